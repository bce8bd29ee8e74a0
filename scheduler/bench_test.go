package scheduler

import "testing"

// BenchmarkPick measures one new-connection decision over 100 servers of
// weights 1..10, the hashing schedulers over a rotating set of clients.
// Run with -benchmem: every line must show 0 allocs/op.
func BenchmarkPick(b *testing.B) {
	snap := lab(hundred()...)
	load := make(counts, len(snap))
	for i := range load {
		load[i] = [2]uint32{uint32(i*7) % 50, uint32(i*13) % 400}
	}
	var flows [1024]Flow
	for k := range flows {
		flows[k] = Flow{Proto: 6, Src: client(k * 37), SrcPort: uint16(1024 + k*31)}
	}
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			s := mustNew(b, name, snap, Options{})
			var l Load = &load
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if _, err := s.Pick(&flows[k&1023], l); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}

// BenchmarkPickParallel shows the cost of the shared rr/wrr position under
// contention from every core.
func BenchmarkPickParallel(b *testing.B) {
	snap := lab(hundred()...)
	for _, name := range []string{"rr", "wrr", "sh", "mh"} {
		b.Run(name, func(b *testing.B) {
			s := mustNew(b, name, snap, Options{})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				f := Flow{Src: client(1)}
				k := 0
				for pb.Next() {
					f.Src = client(k & 0xffff)
					s.Pick(&f, nil)
					k++
				}
			})
		})
	}
}

// BenchmarkNew is the cost of a rebuild (a weight or health change).
func BenchmarkNew(b *testing.B) {
	snap := lab(hundred()...)
	for _, name := range []string{"wrr", "sh", "mh"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				mustNew(b, name, snap, Options{})
			}
		})
	}
}
