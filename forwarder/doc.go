// Package forwarder is drlb's data path: one frame in, one verdict out.
//
// Packet flow through Process:
//
//	frame ──decode──▶ Ethernet [802.1ad|802.1Q [802.1Q]] IPv4|IPv6 [frag] TCP|UDP|ICMP-error
//	      ──match───▶ virtual service by (protocol, VIP, port), port 0 = every port
//	      ──conn────▶ connection table (proto, CIP, CPORT, VIP, VPORT): existing entry,
//	                  or persistence template, or the scheduler for a new connection
//	      ──rewrite─▶ source MAC = director, destination MAC = real server;
//	                  the IP packet stays byte-identical (a partial L4 checksum is
//	                  completed when the caller says the frame carries one)
//	      ──verdict─▶ Forward (write the frame back out), Pass (not ours: the
//	                  kernel has its own copy), Drop (ours but refused, counted by reason)
//
// Nearly every frame is a plain TCP or UDP packet of a connection that
// stays in its state: fastExisting (fastpath.go) forwards those from a key
// read straight from the bytes, and hands anything else to the full path
// above untouched. Prefetch, called before a batch, starts loading the
// connection slots of all its frames, and Process finds them on their
// way; under load an Ahead (ahead.go) prefetches instead a stream 12
// frames ahead of the frame processed, 4 at a time, across into the next
// batch the director already read, and hands the fast path the key and
// hash it computed. Counts are held for the batch and published at its end
// (heldcounts.go). With kernel
// flows on (EnableKernelFlows, kernelflows.go), a flow the fast path
// forwarded is handed to a program in the kernel (the AF_XDP port's XDP
// program, or an AF_PACKET worker's socket filter and tc program), which forwards its frames itself and sends one per refresh,
// and anything that changes the connection, on to Process; the full path
// takes the flow back.
//
// The package does no I/O and keeps no clock of its own: the caller passes
// each frame's time, so the live director, `drlb replay` and the tests run
// the very same pipeline and a replay is repeatable. Process allocates
// nothing in steady state.
//
// Process is not safe for concurrent use (one goroutine owns the connection
// table); the control methods (SetMAC, SetAvailable, SetWeight, SetHealth),
// Apply and the counters may be used from any goroutine. For several cores,
// New makes Options.Workers workers (Workers) that share the configuration,
// real servers and schedulers and each own a connection table: one
// goroutine per worker runs Process with no lock in common.
//
// Apply changes the configuration live. Connection entries name their
// service and real server by slots that never move while an entry names
// them, not by configuration index: what stays keeps its entries, counters
// and state however the configuration around it moves, and the swap does
// no work per entry, so a table of a million connections costs it
// nothing. Process reads the running configuration through one atomic
// pointer per frame.
package forwarder
