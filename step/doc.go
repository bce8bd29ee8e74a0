// Package step is the director's per-batch work, free of I/O and clocks, so
// that the live director and `drlb replay` run the very same code.
//
// Packet flow in Handle, frame by frame, in order:
//
//	in ─┬─ ARP ──────────────▶ Resolver (a real server's answer: learn its MAC)
//	    │                      Responder (who-has VIP → reply with the director's MAC) ─▶ out
//	    ├─ ICMPv6 ───────────▶ Resolver, Responder (neighbor solicitation for a VIP → advert) ─▶ out
//	    │                      then, like any IP frame:
//	    └─ IP ───────────────▶ forwarder.Process (match service, schedule, rewrite MACs)
//	                             Forward ─────────────────────────────────────────▶ out
//	                             too big for the MTU, don't fragment ─▶ forwarder.TooBig ─▶ out
//	                             TCP of a connection whose server is gone ─▶ forwarder.Reset ─▶ out
//	                             Pass / Drop: nothing leaves
//
// Every frame is then shown to the Observer, if any: the one narrator behind
// `drlb run -trace` and `drlb replay -v`.
//
// The caller owns I/O and time: the live director reads a batch from its
// port, stamps it with the wall clock, calls Handle and writes out back; a
// replay reads frames from a pcap, stamps them with their capture time and
// writes out to a pcap. Under load the director reads the next batch
// before it handles this one and calls HandleAhead(now, in, next, out),
// which gives the same output as Handle but starts the next batch's
// connection-table lookups during this one (forwarder.Ahead). Control work (resolving real servers, rebuilding
// schedulers, health checks) happens beside the loop, never inside Handle:
// see ARCHITECTURE.md, "Data path".
package step
