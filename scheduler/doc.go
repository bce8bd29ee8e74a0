// Package scheduler places new connections on real servers, with the
// algorithms and semantics of IPVS (ipvsadm -s): rr, wrr, lc, wlc, sed, nq,
// sh and mh.
//
// Where it sits in the packet flow: the forwarder decodes a client frame
// (CIP -> VIP), looks the flow up in its connection table and, only when the
// flow is new, asks the virtual service's Scheduler (through a Handle) for a
// real server. The answer is an index into the immutable snapshot of real
// servers the scheduler was built from; the forwarder records it in the
// connection entry and rewrites the frame's destination MAC to that server's.
// Later packets of the flow follow the entry, never the scheduler.
//
// A scheduler never changes after New: a change of servers, weights or
// health builds a new one, which is swapped in with Handle.Store. That keeps
// Pick lock-free and allocation-free: rr and wrr advance an atomic position,
// lc, wlc, sed and nq read live counts through Load, and sh and mh look the
// flow's hash up in a table built once. NewAfter builds the replacement
// from where the old one is, as IPVS keeps its place across edits: rr
// continues after its last pick, wrr keeps its current weight.
//
// sh and mh are consistent (see Traits): their pick is a pure function
// of the snapshot (addresses, weights, availability) and the flow. Hashes use
// fixed seeds and tables are built from servers sorted by address, so
// several directors behind ECMP, or a restarted director, pick the same
// server for the same flow without sharing state, whatever order the
// servers were listed in. Placement gives a consistent scheduler's choice
// as a bucket table, so that drlb's XDP program forwarding SYNs under table
// pressure (-kernel-syns) picks exactly the server Pick would.
//
// Weights above math.MaxInt32 (the IPVS limit) count as math.MaxInt32.
// Options fields a scheduler does not use are ignored, as IPVS ignores
// sh-port on an rr service.
package scheduler
