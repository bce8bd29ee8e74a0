// Package doctor checks the host side of a DR setup and says how to fix
// what is wrong, each failure with the command that fixes it: the director
// must not own the VIP, must not forward, and needs its LAN interface up
// (Director); a real server must hold the VIP on lo with ARP suppressed
// and must not route replies through the director (RealServer). `drlb
// doctor` on a director also pings each real server, small and at the full
// MTU with don't-fragment, to find one with a smaller MTU (Reachability),
// and with bgp: checks that the peers are on the LAN and answer (ping, or
// a TCP connection to their BGP port) and that the VIPs are off the LAN
// (BGP).
//
// The checks are pure functions of a Host (System: netlink, /proc/sys and
// ICMP on Linux; a fake in tests). The director runs Director's checks at
// start-up and refuses to run when a fatal one fails, so a misconfigured
// host never starts half-working.
package doctor
