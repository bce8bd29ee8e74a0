// Package arp is the director's neighbor layer: it answers ARP and IPv6
// neighbor discovery for the VIPs, announces the VIPs, and learns the MAC
// addresses of the real servers. It does no I/O of its own: it reads raw
// Ethernet frames (untagged, 802.1Q-tagged or double-tagged QinQ, read by
// internal/wire as everywhere in drlb) and writes frames into caller
// buffers or through a Sender, so it runs the same under tests, in replay
// and in the live director (which wires it to an AF_PACKET port).
//
// Packet flow on the LAN shared by router, director and real servers:
//
//	router   --ARP who-has VIP? (broadcast)------------------> everyone
//	director --ARP VIP is-at MAC(director) (Responder)-------> router
//	real servers stay silent: the VIP sits on their lo with arp_ignore=1,
//	so only the director answers and all VIP traffic comes to it.
//
//	director --gratuitous ARP VIP is-at MAC(director) x5 (Announcer: at
//	           start 1s apart; on becoming VRRP master 5 at once and 5
//	           more 2s later, director/ha.go)------------------> everyone
//
//	director --ARP who-has RIP? (Resolver)-------------------> everyone
//	real server --ARP RIP is-at MAC(rs)----------------------> director
//	director forwards VIP frames unchanged but for dst MAC = MAC(rs),
//	looked up per frame with Resolver.Lookup (lock-free, no allocation).
//
// IPv6 is the same with neighbor solicitations and advertisements: the
// Responder answers solicitations for a VIP with a solicited, override
// advertisement; the Announcer sends unsolicited advertisements to
// ff02::1; the Resolver solicits the real servers' solicited-node groups.
//
// The kernel of the director must not own the VIP (it would answer TCP
// with RST), which is why this package answers for it in user space.
// Frames whose source MAC is the director's own are ignored everywhere:
// they are our own transmissions read back.
//
// Conflicts: when another station claims a VIP (gratuitous ARP, ARP or
// solicitation sent from the VIP, advertisement for it) the Responder does
// not answer the announcement but counts it and calls OnConflict, so the
// director can log it and re-announce with the Announcer. Probes for a VIP
// (ARP with sender 0.0.0.0, RFC 5227; duplicate address detection from ::)
// are answered, as the owner of an address must, so the prober backs off.
package arp
