// Package director is the live DR director: it wires a frame port (AF_PACKET
// on the LAN interface) to the director's step and runs the control work
// beside it.
//
// Packet flow in Serve, one batch at a time, in each worker's loop:
//
//	kernel fanout ─▶ port.ReadBatch ─▶ step.Handle(now, batch) ─▶ port.WriteBatch
//	(by client:       (main, SYN and   (ARP/NDP answers, resolver input,
//	 link.ClientHash;  trusted-SYN      forwarder.Process, too-big replies,
//	 bare SYNs apart)  sockets per      resets, trace; see package step)
//	                   worker, main first)
//
// A batch that came full makes the loop read the next one at once
// (link.ReadAheader) and hand both to step.HandleAhead, which starts the
// next batch's table lookups while it handles this one.
//
// Each worker (one per CPU by default; with -io afxdp one per receive
// queue in use) has its own sockets (link.OpenSplit: everything but bare
// TCP SYNs, read first, bare SYNs of clients that completed a handshake
// (where the eBPF fanout program loads),
// and the other bare SYNs, so a SYN flood overflows only the SYN queue;
// or an AF_XDP port per queue, link.OpenXDPQueues), step and
// connection table, so the workers share no lock on the data path; the
// kernel sorts frames among them by client address, so a client's
// connections, template, fragments and ICMP errors meet in one table. A
// worker's loop holds its own mutex per batch, uncontended: the idle
// sweeper, connection listings and sync take it briefly between batches. Nothing slow runs
// inside a batch: the resolver's events (a real server resolved, changed,
// failed) are queued and applied by a goroutine beside the loop, because
// applying one rebuilds schedulers (milliseconds for mh with 100 servers);
// the forwarder swaps schedulers through an atomic pointer. Beside the
// loop also run: the Announcer (gratuitous ARP / unsolicited NA for the
// VIPs at start and on conflicts), the Resolver (asks for real servers'
// MACs and refreshes them), health checks, SIGHUP reloads and the control
// socket; with bgp: the announcer's report (bgp.go), with ha: the VRRP
// runners (ha.go) and connection sync (sync.go), with -kernel-flows each
// worker's follower of the flows handed to the kernel (kernelflows.go).
// See ARCHITECTURE.md, "Data path" and "Goroutines, state and clocks".
//
// Apply changes the configuration live (SIGHUP uses it): the next
// configuration is built beside the running loop, and the workers' locks
// are taken only to swap it in, which costs the same with a million
// connections as with none; connections to real servers that stay keep
// going. See ARCHITECTURE.md, "Goroutines, state and clocks".
//
// Run adds what only a real host has: start-up checks that refuse a setup
// that would misbehave (the VIP bound on the director, IP forwarding on,
// interface down, no privileges) with a message that says what to change.
package director
