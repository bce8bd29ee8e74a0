package director

import (
	"context"
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
)

// serveBench starts a director with static real-server MACs on a pipe and
// returns the wire end and a batch of client frames for 64 flows.
func serveBench(tb testing.TB) (link.Port, []link.Frame) {
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 4096, Services: []config.Service{{
		VIP: vip, Port: 9, Protocol: config.UDP, Scheduler: "sh",
		RealServers: resolvedReals(),
	}}}
	dirPort, wire := link.Pipe()
	d, err := New(cfg, dirPort, Options{AnnounceCount: 1, AnnounceInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Serve(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done; wire.Close() })
	frames := link.NewFrames(64)
	l2 := framegen.L2{Src: routerMAC, Dst: dirPort.HardwareAddr()}
	for i := range frames {
		f := framegen.UDP(l2, netip.AddrPortFrom(netip.MustParseAddr("198.18.1.10"), uint16(1000+i)), netip.AddrPortFrom(vip, 9), make([]byte, 18))
		frames[i].Data = append(frames[i].Data[:0], f...)
	}
	return wire, frames
}

// roundTrip sends a batch into the director and reads back everything it
// forwards; it returns how many frames came back.
func roundTrip(ctx context.Context, tb testing.TB, wire link.Port, in, out []link.Frame) int {
	if _, err := wire.WriteBatch(in); err != nil {
		tb.Fatal(err)
	}
	got := 0
	for got < len(in) {
		n, err := wire.ReadBatch(ctx, out)
		if err != nil {
			tb.Fatalf("after %d of %d frames: %v", got, len(in), err)
		}
		for _, f := range out[:n] {
			if binary.BigEndian.Uint16(f.Data[12:]) == 0x0800 { // skip the announcement
				got++
			}
		}
	}
	return got
}

// TestServeNoAllocations: in steady state a batch through the whole
// director (read, decide, rewrite, write) allocates nothing, in any
// goroutine of the process.
func TestServeNoAllocations(t *testing.T) {
	wire, in := serveBench(t)
	out := link.NewFrames(128)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 20; i++ { // warm up: connections, buffers, goroutines
		roundTrip(ctx, t, wire, in, out)
	}
	var before, after runtime.MemStats
	const rounds = 200
	runtime.ReadMemStats(&before)
	for i := 0; i < rounds; i++ {
		roundTrip(ctx, t, wire, in, out)
	}
	runtime.ReadMemStats(&after)
	perFrame := float64(after.Mallocs-before.Mallocs) / float64(rounds*len(in))
	// Timers, the control goroutines beside the loop and the runtime (more
	// so under -race) allocate a little on their own: 0.010 was seen once
	// under -race. A per-frame allocation would show as >= 1, one every ten
	// frames as 0.1.
	if perFrame > 0.05 {
		t.Fatalf("%.3f allocations per forwarded frame, want 0", perFrame)
	}
	t.Logf("%.4f allocations per frame over %d frames", perFrame, rounds*len(in))
}

// BenchmarkServe: frames through the director loop over an in-memory port
// (the director's user-space cost per frame, without system calls).
func BenchmarkServe(b *testing.B) {
	wire, in := serveBench(b)
	out := link.NewFrames(128)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	roundTrip(ctx, b, wire, in, out)
	b.ReportAllocs()
	b.ResetTimer()
	frames := 0
	for b.Loop() {
		frames += roundTrip(ctx, b, wire, in, out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}
