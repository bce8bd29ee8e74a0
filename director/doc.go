// Package director is the live DR director: it wires a frame port (AF_PACKET
// on the LAN interface), the forwarding pipeline and the neighbor layer.
//
// Packet flow in Serve, one batch at a time:
//
//	port.ReadBatch ─┬─ ARP / neighbor discovery ─▶ Responder (who-has VIP → our MAC)
//	                │                             Resolver (real servers' MACs)
//	                └─ everything else ─────────▶ forwarder.Process (match, schedule,
//	                                               rewrite MACs in place)
//	port.WriteBatch ◀── forwarded frames (with their offload header) + ARP/NDP replies
//
// Control work runs beside the loop: the Announcer sends gratuitous ARP for
// the VIPs at start, the Resolver asks for real servers' MACs and refreshes
// them, and its events mark real servers usable or not in the forwarder.
//
// Run adds what only a real host has: start-up checks that refuse a setup
// that would misbehave (the VIP bound on the director, IP forwarding on,
// interface down, no privileges) with a message that says what to change.
package director
