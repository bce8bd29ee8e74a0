package forwarder

import (
	"net/netip"

	"github.com/drlb/drlb/scheduler"
)

// StatelessSYNTable is where one service's bare TCP SYNs go while the
// table is under pressure, for a program that forwards them itself (the
// XDP program): the same choice as synStateless.
//
// For an IPv4 client address A (big-endian uint32) and port P, the bucket
// is ((h>>32)*uint64(len(MACs)))>>32 with h = mix64(Seed ^ x), x =
// uint64(A)<<16 ^ uint64(P) with HashPort, uint64(A) without (see
// scheduler.Placement.Seed for mix64). A SYN whose bucket's MAC is not all
// zero is forwarded by drlb to that MAC (ReasonSynStateless) while
// StatelessSYNsOn; anything else is drlb's to decide, as is every SYN of
// a table without MACs. IPv6 clients hash differently
// (scheduler.BucketIPv6); the kernel sides take them too.
type StatelessSYNTable struct {
	VIP netip.Addr
	// Port is the service's port; 0 is the service that takes every port
	// of the VIP that no other TCP service of it names (the XDP program
	// leaves that one's SYNs to drlb: it matches ports exactly).
	Port     uint16
	Seed     uint64 // scheduler.Placement.Seed
	HashPort bool   // scheduler.Placement.Port
	// MACs holds per bucket the real server's MAC; all zero: let drlb
	// decide (unusable server, unknown MAC, a -1 bucket). Empty when the
	// service has no server with a weight.
	MACs [][6]byte
}

// StatelessSYNTables returns a table for every TCP service whose SYNs go
// stateless under pressure (no persistence; none at all when statefulSYN
// is set), from the running configuration, in configuration order. Any
// goroutine. The tables are a snapshot: a change of real servers, weights,
// health or MACs calls for new ones.
func (f *Forwarder) StatelessSYNTables() []StatelessSYNTable {
	if f.statefulSYN {
		return nil
	}
	var out []StatelessSYNTable
	for _, s := range f.cur.Load().services {
		if s.key.proto != protoTCP || s.cfg.Persistence > 0 {
			continue
		}
		p, ok := scheduler.PlacementOf(s.statelessScheduler())
		if !ok {
			continue // no stateless hash: SYNs stay stateful
		}
		t := StatelessSYNTable{VIP: s.key.vip, Port: s.key.port, Seed: p.Seed(), HashPort: p.Port}
		if len(p.Buckets) > 0 {
			t.MACs = make([][6]byte, len(p.Buckets))
			// One MAC per server, read once: every bucket of a server
			// gets the same one.
			macs := make([]uint64, len(s.reals))
			for i, r := range s.reals {
				// pickWith's check: usable, which needs the MAC.
				if m := r.mac.Load(); r.available.Load() && m&macKnown != 0 {
					macs[i] = m
				}
			}
			for b, i := range p.Buckets {
				if i >= 0 && int(i) < len(macs) && macs[i] != 0 {
					putMAC(t.MACs[b][:], macs[i])
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// StatelessSYNsOn reports whether this worker places SYNs without entry
// now (table pressure, stateless SYNs allowed). Any goroutine.
func (f *Forwarder) StatelessSYNsOn() bool { return f.pressure.Load() && !f.statefulSYN }

// NoteStatelessSYNs records n SYNs that were forwarded statelessly outside
// Process (by the kernel: the XDP or tc program) up to now: counted as ReasonSynStateless
// and in KernelSYNs, and they open the adoption window and count in the
// pressure shadow exactly as n calls of f.stateless.note(now) would. For
// the goroutine that runs Process. It allocates nothing.
func (f *Forwarder) NoteStatelessSYNs(n uint64, now int64) {
	if n == 0 {
		return
	}
	f.counts[ReasonSynStateless].Add(n)
	f.kernelSYNs.Add(n)
	f.stateless.noteN(now, n)
}

// KernelSYNs is how many bare SYNs the kernel forwarded itself while the
// table was under pressure, as noted by NoteStatelessSYNs; they are counted
// as ReasonSynStateless too. Any goroutine.
func (f *Forwarder) KernelSYNs() uint64 { return f.kernelSYNs.Load() }

// StatelessSYNGeneration changes whenever StatelessSYNTables may: a
// configuration swap, a scheduler rebuild (availability, weight, a MAC
// learned or lost), a real server's new MAC. A caller that keeps tables
// in the kernel rewrites them when it changes. Any goroutine.
func (f *Forwarder) StatelessSYNGeneration() uint64 {
	// Swaps in the high half: a swap that drops a service (and its
	// count) still changes the sum.
	g := f.synGen.Load() << 32
	for _, s := range f.cur.Load().services {
		g += s.gen.Load()
	}
	return g
}
