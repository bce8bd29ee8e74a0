// Package replay runs a pcap file through the forwarding pipeline, the very
// one the live director runs, and writes what it forwards to another pcap.
//
// Packet flow: pcap reader -> forwarder.Process (decode, match, connection
// table, scheduler, MAC rewrite) -> pcap writer for Forward verdicts, with
// each frame's original timestamp. Frames that are passed or dropped are
// absent from the output; the per-frame listing says why. Connection
// timeouts run on the capture's timestamps, so a replay is repeatable.
package replay
