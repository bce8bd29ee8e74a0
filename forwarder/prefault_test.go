package forwarder

import (
	"encoding/binary"
	"runtime/debug"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
)

// firstBatch is a new director's first batch: SYNs from n new clients.
func firstBatch(tb testing.TB, f *Forwarder, n int) {
	frame := syn(client(0, 1))
	m := &Meta{Time: t0}
	for i := range n {
		binary.BigEndian.PutUint16(frame[14+12+2:], uint16(i>>16)) // client IP low half
		binary.BigEndian.PutUint16(frame[14+20:], uint16(i))       // client port
		if r := f.Process(frame, m); r.Verdict != Forward {
			tb.Fatalf("SYN %d: %v/%v", i, r.Verdict, r.Reason)
		}
	}
}

// TestPrefaultKeepsConnections: Prefault on a forwarder of two workers
// that both hold connections keeps them.
// (conntable's tests check the pages and the bytes.)
func TestPrefaultKeepsConnections(t *testing.T) {
	cfg := testConfig("wrr", 3)
	cfg.MaxConns = 1 << 20 // 32 MiB of slots per worker: the huge-page path
	f0, err := New(cfg, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range f0.Workers() {
		firstBatch(t, w, 100)
	}
	if err := f0.Prefault(); err != nil {
		t.Logf("Prefault: %v (pages touched one by one)", err)
	}
	frame := ack(client(0, 1))
	m := &Meta{Time: t0 + int64(time.Second)}
	for wi, w := range f0.Workers() {
		for i := range 100 {
			binary.BigEndian.PutUint16(frame[14+12+2:], uint16(i>>16))
			binary.BigEndian.PutUint16(frame[14+20:], uint16(i))
			if r := w.Process(frame, m); r.Reason != ReasonExisting {
				t.Fatalf("worker %d, ACK %d after Prefault: %v/%v, want its connection", wi, i, r.Verdict, r.Reason)
			}
		}
	}
}

// BenchmarkFirstConnections is a new director's first batch, 256 SYNs
// from new clients, into a table of the default max_conns (64 MiB of
// slots): cold, where these inserts fault the table's pages in (a 2 MiB
// huge page zeroed per fault, after compaction where memory is
// fragmented), and prefaulted (Forwarder.Prefault first, as the live
// director does at start). The metric is the batch's own time; ns/op
// also counts making the forwarder.
func BenchmarkFirstConnections(b *testing.B) {
	for _, v := range []struct {
		name     string
		prefault bool
	}{{"cold", false}, {"prefaulted", true}} {
		b.Run(v.name, func(b *testing.B) {
			var batch time.Duration
			for b.Loop() {
				// The last forwarder's memory back to the kernel: this
				// one's must be fresh, as a new process's is.
				debug.FreeOSMemory()
				cfg := testConfig("wrr", 3)
				cfg.MaxConns = config.DefaultMaxConns
				f := newForwarder(b, cfg, Options{})
				if v.prefault {
					_ = f.Prefault()
				}
				start := time.Now()
				firstBatch(b, f, 256)
				batch += time.Since(start)
			}
			b.ReportMetric(float64(batch.Microseconds())/float64(b.N)/1000, "ms/first-batch")
		})
	}
}
