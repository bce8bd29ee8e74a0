package director

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
)

// BenchmarkApplyLockHold: how long Apply holds the loop's lock with a
// million connections in the table, beside the time the loop itself holds
// it for one batch of 64 frames. Each Apply adds or removes a real server
// and changes weights in an mh service (a 65537-entry Maglev table to
// rebuild) while the loop forwards. Metrics:
//
//	swap-max-µs, swap-p50-µs  the lock held by Apply's swap
//	batch-max-µs, batch-p50-µs the lock held by the loop for one batch
//	rtt-alone-*, rtt-applying-* round trips of a 64-frame batch through the
//	                          running director (in-memory port), without
//	                          and during the Applies: p50, p99, max
//	conns                     connections in the table
//	ns/op                     one whole Apply (building the schedulers included)
func BenchmarkApplyLockHold(b *testing.B) {
	const conns = 1_000_000
	reals := func(n int, weight int) []config.RealServer {
		var out []config.RealServer
		for i := 1; i <= n; i++ {
			out = append(out, realAt(i, weight, net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}))
		}
		return out
	}
	cfgA := configOf(service(vip, 80, "mh", reals(10, 1)...))
	cfgA.MaxConns = config.DefaultMaxConns
	cfgA.Timeouts.TCPSynRecv = time.Hour // the table stays full for the whole run
	cfgB := cfgA.Clone()
	cfgB.Services[0].RealServers = append([]config.RealServer{realAt(11, 3, net.HardwareAddr{2, 0, 0, 0, 1, 11})}, reals(9, 2)...)

	dirPort, wire := link.Pipe()
	d, err := New(cfgA, dirPort, Options{AnnounceCount: 1, AnnounceInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	l2 := framegen.L2{Src: routerMAC, Dst: dirPort.HardwareAddr()}
	now := time.Now().UnixNano()
	client := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), uint16(1024+i>>16))
	}
	web := netip.AddrPortFrom(vip, 80)
	syn := framegen.TCP(l2, client(0), web, "S", 1, 0, nil)
	for i := range conns {
		c := client(i)
		f := slices.Clone(syn)
		copy(f[14+12:], c.Addr().AsSlice())
		f[14+20], f[14+21] = byte(c.Port()>>8), byte(c.Port())
		if res := d.fw.Process(f, &forwarder.Meta{Time: now}); res.Verdict != forwarder.Forward {
			b.Fatalf("connection %d: %v", i, res)
		}
	}
	// Existing flows spread over the table, as the loop sees them.
	batch := link.NewFrames(64)
	for i := range batch {
		c := client(i * (conns / 64))
		batch[i].Data = append(batch[i].Data[:0], framegen.TCP(l2, c, web, "A", 2, 1, make([]byte, 10))...)
	}
	orig := make([][]byte, len(batch))
	for i := range batch {
		orig[i] = slices.Clone(batch[i].Data)
	}

	// The loop's own hold: one batch through the step under the lock.
	out := make([]link.Frame, 0, 128)
	var holds []time.Duration
	for range 2000 {
		for i := range batch {
			batch[i].Data = append(batch[i].Data[:0], orig[i]...)
		}
		w := d.workers[0]
		w.mu.Lock()
		t := time.Now()
		out = w.step.Handle(time.Now().UnixNano(), batch, out[:0])
		holds = append(holds, time.Since(t))
		w.mu.Unlock()
	}
	if len(out) != len(batch) {
		b.Fatalf("a batch forwarded %d of %d frames", len(out), len(batch))
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done; wire.Close() }()

	// Traffic through the running loop, timed: first alone (the
	// baseline), then for as long as the Applies run.
	var (
		mu       sync.Mutex
		rtts     [2][]time.Duration // without, with Applies
		applying = 0
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Minute)
		defer rcancel()
		got := link.NewFrames(128)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := range batch {
				batch[i].Data = append(batch[i].Data[:0], orig[i]...)
			}
			t := time.Now()
			roundTrip(rctx, b, wire, batch, got)
			rtt := time.Since(t)
			mu.Lock()
			rtts[applying] = append(rtts[applying], rtt)
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	applying = 1
	mu.Unlock()

	var swaps []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cfg := cfgB
		if i%2 == 1 {
			cfg = cfgA
		}
		if err := d.Apply(cfg); err != nil {
			b.Fatal(err)
		}
		swaps = append(swaps, time.Duration(d.swapHeld.Load()))
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	if n := d.fw.TableLen(); n < conns {
		b.Fatalf("%d connections in the table, want %d", n, conns)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	slices.Sort(swaps)
	slices.Sort(holds)
	b.ReportMetric(us(swaps[len(swaps)-1]), "swap-max-µs")
	b.ReportMetric(us(swaps[len(swaps)/2]), "swap-p50-µs")
	b.ReportMetric(us(holds[len(holds)-1]), "batch-max-µs")
	b.ReportMetric(us(holds[len(holds)/2]), "batch-p50-µs")
	for i, name := range []string{"rtt-alone", "rtt-applying"} {
		slices.Sort(rtts[i])
		if n := len(rtts[i]); n > 0 {
			b.ReportMetric(us(rtts[i][n/2]), name+"-p50-µs")
			b.ReportMetric(us(rtts[i][n*99/100]), name+"-p99-µs")
			b.ReportMetric(us(rtts[i][n-1]), name+"-max-µs")
		}
	}
	b.ReportMetric(float64(d.fw.TableLen()), "conns")
}
