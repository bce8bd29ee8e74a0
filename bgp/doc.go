// Package bgp announces the director's VIPs to routers, so that several
// active directors share the traffic through the router's ECMP (as Katran,
// GLB Director and Maglev deployments do):
//
//	client --> router (ECMP over the directors that announce VIP/32)
//	             |--frame dst=MAC(director1) IP CIP->VIP--> director1 --> real server
//	             '--frame dst=MAC(director2) IP CIP->VIP--> director2 --> real server
//	real server --IP VIP->CIP--> router (its default route), never via a director
//
// The router hashes each flow onto one director; when a director leaves or
// joins, flows move between directors, and with sh or mh the new director
// sends them to the same real server without having seen them
// (ARCHITECTURE.md#many-directors).
//
// Two parts, one per file:
//
//   - Announcer (announcer.go) is the state machine: it is told, per VIP,
//     how many real servers each of its services can use, and announces a
//     VIP while every service of it has at least the configured minimum,
//     the director is not drained and not stopping; it withdraws it
//     otherwise, and when the configuration no longer has the VIP. It
//     does no I/O of its own: it drives a Speaker.
//   - GoBGP (gobgp.go) is the Speaker: an embedded GoBGP server
//     (github.com/osrg/gobgp/v4) that does not listen, talks only to the
//     configured peers, rejects every route they send, and originates each
//     VIP as a /32 (/128) with the director's interface address as the
//     next hop.
//
// The package is pure Go and builds everywhere; the live director wires it
// in director/bgp.go.
package bgp
