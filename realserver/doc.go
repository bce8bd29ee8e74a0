// Package realserver prepares a Linux host to be an LVS-DR real server and
// undoes it: the logic behind `drlb realserver up|down`.
//
// Why: in Direct Routing the director forwards the client's frame unchanged
// (destination IP = VIP) to the real server's MAC. The real server accepts
// it only if it holds the VIP itself, so Up puts VIP/32 (VIP/128 for IPv6)
// on lo, and answers from the VIP straight to the client. It must never
// answer ARP for the VIP on the LAN — that would steal the VIP from the
// director — hence arp_ignore=1 (answer only for addresses on the receiving
// interface) and arp_announce=2 (never use the VIP as the source of our own
// ARP requests), on "all" and on the LAN interface: the kernel uses the
// larger of the two values. IPv6 needs no sysctl: the kernel answers
// neighbour solicitations only for addresses on the receiving interface.
//
// Up is idempotent and first saves what it is about to change (the previous
// sysctl values, whether the VIP was already on lo) in a small JSON state
// file, /run/drlb/realserver-<vip>.json by default, so Down restores exactly
// what was there before. Both return the steps as the commands an operator
// would type (ip addr add ..., sysctl -w ...), marking those that were
// already so.
//
// The host is reached through the System interface: NewSystem uses netlink
// and /proc/sys; tests use a temporary directory as /proc/sys.
package realserver
