package forwarder

import (
	"encoding/binary"
	"fmt"
	"github.com/drlb/drlb/config"
	"sync"
	"testing"
)

// TestWorkers: two workers share the configuration, the real servers and
// their counters, and keep separate connection tables. A connection lives
// in the table of the worker that saw its SYN; expiry in either table
// keeps the shared counters right; Apply reaches both.
func TestWorkers(t *testing.T) {
	cfg := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1), rsAt(3, 1)))
	f := newForwarder(t, cfg, Options{Workers: 2})
	ws := f.Workers()
	if len(ws) != 2 || ws[0] != f {
		t.Fatalf("Workers() = %d workers, first %p, want 2 with %p first", len(ws), ws[0], f)
	}
	if got, want := ws[0].table.Cap()+ws[1].table.Cap(), cfg.MaxConns; got != want {
		t.Fatalf("tables hold %d entries in all, want max_conns %d", got, want)
	}
	c0, c1 := client(0, 40000), client(1, 40000)
	expect(t, ws[0].Process(syn(c0), &Meta{Time: t0}), Forward, ReasonNew)
	expect(t, ws[1].Process(syn(c1), &Meta{Time: t0}), Forward, ReasonNew)
	expect(t, ws[0].Process(ack(c0), &Meta{Time: t0 + second}), Forward, ReasonExisting)
	expect(t, ws[1].Process(ack(c1), &Meta{Time: t0 + second}), Forward, ReasonExisting)
	// Each table knows only its own connection.
	expect(t, ws[1].Process(ack(c0), &Meta{Time: t0 + second}), Drop, ReasonNoConn)
	if ws[0].TableLen() != 1 || ws[1].TableLen() != 1 {
		t.Fatalf("table lengths %d and %d, want 1 and 1", ws[0].TableLen(), ws[1].TableLen())
	}
	checkCounts(t, f)
	if n := f.Count(ReasonNew); n != 2 {
		t.Fatalf("Count(new) = %d, want 2 (both workers)", n)
	}
	active := 0
	for _, r := range f.Stats()[0].RealServers {
		active += r.Active
	}
	if active != 2 {
		t.Fatalf("%d active connections in Stats, want 2", active)
	}
	// Each worker counts its own totals; Stats adds them up.
	if c := f.Stats()[0].Counters; c.Connections != 2 || c.Packets != 4 {
		t.Fatalf("service totals %+v, want 2 connections and 4 packets from both workers", c)
	}
	// Apply on one worker is seen by both: weight 0 on every server but
	// the third sends the next new connections of either worker there.
	next := cfg.Clone()
	next.Services[0].RealServers[0].Weight = 0
	next.Services[0].RealServers[1].Weight = 0
	applyNow(t, ws[1], next, t0+2*second)
	for i, w := range ws {
		res := w.Process(syn(client(10+i, 40000)), &Meta{Time: t0 + 2*second})
		expect(t, res, Forward, ReasonNew)
		if res.Real != 2 {
			t.Fatalf("worker %d sent a new connection to %d after Apply, want 2", i, res.Real)
		}
	}
	// Expiry in both tables gives the counters back.
	for _, w := range ws {
		w.Tick(t0+3600*second, w.TableSlots())
	}
	checkCounts(t, f)
	for _, r := range f.Stats()[0].RealServers {
		if r.Active+r.Inactive != 0 {
			t.Fatalf("after expiry %s still counts %d active %d inactive", r.Addr, r.Active, r.Inactive)
		}
	}
}

// TestWorkersConcurrent runs two workers on two goroutines while the
// control methods run beside them (go test -race).
func TestWorkersConcurrent(t *testing.T) {
	cfg := testConfig("wlc", 3)
	f := newForwarder(t, cfg, Options{Workers: 2})
	var wg sync.WaitGroup
	for i, w := range f.Workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				c := client(i, uint16(1024+j))
				w.Process(syn(c), &Meta{Time: t0})
				w.Process(ack(c), &Meta{Time: t0})
				w.Process(fin(c), &Meta{Time: t0})
			}
		}()
	}
	for range 50 {
		f.Stats()
		f.Overload()
		f.Count(ReasonNew)
	}
	wg.Wait()
	checkCounts(t, f)
	if n := f.Count(ReasonNew); n != 400 {
		t.Fatalf("Count(new) = %d, want 400", n)
	}
}

func TestWorkersBounded(t *testing.T) {
	if _, err := New(testConfig("rr", 1), Options{Workers: MaxWorkers + 1}); err == nil {
		t.Fatal("New accepted more than MaxWorkers workers")
	}
}

// BenchmarkWorkersParallel: each worker forwards packets of its own 10k
// established connections on its own goroutine, all to the same three
// real servers (the counters they share are the only memory they both
// write). ns/op is per packet over all workers: with N cores free, N
// workers should come near 1/N of one worker's.
func BenchmarkWorkersParallel(b *testing.B) {
	const conns = 10_000
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			cfg := testConfig("wrr", 3)
			cfg.MaxConns = 4 * conns * n
			f := newForwarder(b, cfg, Options{Workers: n})
			for _, w := range f.Workers() {
				populate(b, w, conns)
			}
			frame := ack(client(0, 1))
			per := b.N/n + 1
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, w := range f.Workers() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, len(frame))
					m := &Meta{Time: t0 + second}
					for i := range per {
						copy(buf, frame)
						binary.BigEndian.PutUint16(buf[14+12+2:], uint16((i%conns)>>16))
						binary.BigEndian.PutUint16(buf[14+20:], uint16(i%conns))
						if r := w.Process(buf, m); r.Reason != ReasonExisting {
							panic(fmt.Sprintf("%v/%v", r.Verdict, r.Reason))
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
