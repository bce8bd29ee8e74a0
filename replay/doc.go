// Package replay runs a pcap file through the director's step, the very
// one the live director runs, and writes every frame the director would
// send to another pcap.
//
// Packet flow: pcap reader -> step.Handle (ARP/NDP responder, then
// forwarder.Process: decode, match, connection table, scheduler, MAC
// rewrite; too-big replies, resets) -> pcap writer, each output frame with the
// timestamp of the frame that caused it. The output holds the forwarded
// frames and the director's own answers (ARP replies, neighbor
// advertisements, ICMP fragmentation-needed / packet-too-big, TCP resets
// for connections whose real server is gone), in order;
// with ForwardedOnly just the forwarded frames. The per-frame listing (the
// step.Narrator, the same lines as `drlb run -trace`) says which is which.
// Connection timeouts, and the idle sweep the live director runs on a
// timer (forwarder.IdleSweep), run on the capture's timestamps, so a replay is
// repeatable.
package replay
