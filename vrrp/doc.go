// Package vrrp is VRRP version 3 (RFC 5798) for IPv4 and IPv6, as drlb needs it to
// share VIPs between directors and to interoperate with keepalived: the
// advert's wire format, the election state machine, and a thin runner that
// moves adverts between the machine and a socket.
//
//	peer director / keepalived                         this director
//	 224.0.0.18 (ff02::12), TTL (hop limit) 255, proto 112
//	                                 ──▶ Conn.Recv ──▶ Machine.Receive(now, packet)
//	                                                   Machine.Tick(now) (timers)
//	 224.0.0.18 ◀── Conn.Send ◀── Machine.Packet()  ◀─ Output.Send (first)
//	                                                   Output.Changed ─▶ the director (then):
//	                                                     MASTER: answer ARP/NDP for the VIPs, gratuitous ARP
//	                                                     BACKUP: answer nothing for them
//
// Machine does no I/O and reads no clock: the caller passes the time, as
// with package step, so the election is tested with a fake clock. Runner is
// the loop around it (a reader goroutine, one timer); Open (Linux) is the
// Conn: a raw IPv4 socket for protocol 112 bound to the interface, joined
// to 224.0.0.18 there, sending with its own IP header (IP_HDRINCL) from the
// interface's address with TTL 255.
//
// IPv4 and IPv6 are separate virtual routers (RFC 5798 5.2.4), as in
// keepalived (one vrrp_instance per family), even with the same VRID: a
// Machine's family is its Self's. An IPv6 router sends from the
// interface's link-local address to ff02::12 with hop limit 255 (RFC 5798
// 5.1.2), the checksum over the IPv6 pseudo-header, the IPv6 VIPs as its
// addresses (Advert.AppendIPv6, ParseIPv6). Raw IPv6 sockets carry no
// header either way, so the IPv6 Conn strips the one AppendIPv6 built
// (the socket sets source, hop limit and traffic class) and builds one for
// what it reads from the source, IPV6_PKTINFO and IPV6_HOPLIMIT: a packet
// whose hop limit the kernel did not give is ignored as a wrong TTL.
//
// The election follows RFC 5798 section 6.4: master-down interval =
// 3 * the master's advert interval + skew, skew = ((256 - priority) *
// interval) / 256; a backup with preemption ignores adverts of a lower
// priority and so takes over after the master-down interval; a master
// yields to a higher priority (or to an equal one from a higher address);
// a master that stops sends priority 0 and the backups take over after
// the skew. As in keepalived, a router whose link goes down (the caller
// watches the carrier: Runner.SetLink) is FAULT: silent and deaf, it
// answers for no VIP; when the link is back it is BACKUP as at start and
// preempts, if it may, only after the master-down interval, having heard
// the master the others elected meanwhile. Adverts with a TTL other than 255, another version, another
// virtual router id, a bad checksum or a bad length are ignored and
// counted by reason. So is, as keepalived 2.2 ignores it (vrrp_check_packet:
// addr_list_err), an advert for our virtual router whose address list is
// not ours (another count, or one of ours missing; the order does not
// matter), in every state and whatever its priority: a backup hearing
// only such adverts takes over, a master hearing them stays master, both
// routers MASTER until the lists agree; keepalived's skip_check_adv_addr
// (Config.SkipCheckAdvAddr) spares a backup the check of its own master's
// adverts. The Runner logs each distinct mismatch (sender and list) as a
// warning naming the peer, both lists and what differs, at most once a
// second, and the same one again at most once a minute (keepalived logs
// every advert); Reason "addr_list" counts them all. With
// Config.TakeOtherAddrs (a list that follows the director's VIPs, which a
// reload changes on one director before the other) such an advert is
// taken into the election instead, and counted in Stats.AddrListTaken.
package vrrp
