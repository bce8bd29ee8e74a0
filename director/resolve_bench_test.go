package director

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/step"
)

// BenchmarkLoopWhileResolving measures how long the forwarding loop's
// batches take while 100 real servers of an mh service resolve: 100
// batches of 64 frames, each carrying one real server's ARP reply and 63
// client frames. "queued" is the director as built (resolver events go to
// neighborQueue, applied by a goroutine beside the loop, as Serve runs
// it); "inline" applies each event inside the batch, as the director did
// before: a scheduler rebuild (mh, 100 servers) per resolved server, under
// the forwarding lock. Compare the batch times (p50, p99, max) between the two, side by side
// in one run:
//
//	go test -run '^$' -bench LoopWhileResolving -count 5 ./director
func BenchmarkLoopWhileResolving(b *testing.B) {
	for _, mode := range []string{"queued", "inline"} {
		b.Run(mode, func(b *testing.B) {
			var all []time.Duration
			for b.Loop() {
				b.StopTimer()
				r := newResolvingLoop(b, mode == "inline")
				b.StartTimer()
				for i := range r.batches {
					start := time.Now()
					r.mu.Lock() // the director's fwMu, held per batch
					r.out = r.step.Handle(time.Now().UnixNano(), r.batches[i], r.out[:0])
					r.mu.Unlock()
					all = append(all, time.Since(start))
				}
				b.StopTimer()
				r.stop()
				if r.fw.Stats()[0].RealServers[99].MAC == nil {
					b.Fatal("the last real server never became usable")
				}
				b.StartTimer()
			}
			slices.Sort(all)
			at := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) }
			b.ReportMetric(at(0.5), "p50-batch-µs")
			b.ReportMetric(at(0.99), "p99-batch-µs")
			b.ReportMetric(at(1), "max-batch-µs")
		})
	}
}

type resolvingLoop struct {
	fw      *forwarder.Forwarder
	step    *step.Step
	mu      sync.Mutex
	batches [][]link.Frame
	out     []link.Frame
	stop    func()
}

// newResolvingLoop builds a director's step for 100 unresolved real
// servers (mh) and rs 0 known, asks for the other 99 (and 100th) MACs, and
// prepares batches that answer one each among client traffic.
func newResolvingLoop(b *testing.B, inline bool) *resolvingLoop {
	const servers = 100
	dirMAC := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	dirIP := netip.MustParseAddr("198.18.0.2")
	svc := config.Service{VIP: vip, Port: 9, Protocol: config.UDP, Scheduler: "mh"}
	for i := range servers {
		rs := config.RealServer{Address: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}), Weight: 1}
		if i == 0 {
			rs.MAC = rs1MAC // one server known from the start, so traffic flows
		}
		svc.RealServers = append(svc.RealServers, rs)
	}
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 1 << 16, Services: []config.Service{svc}}
	fw, err := forwarder.New(cfg, forwarder.Options{MAC: dirMAC})
	if err != nil {
		b.Fatal(err)
	}
	d := &Director{fw: fw, log: slog.New(slog.DiscardHandler), neighbors: newNeighborQueue()}
	onEvent := d.neighbors.push
	if inline {
		onEvent = d.applyNeighbor
	}
	mac, _ := arp.MACFrom(dirMAC)
	res, err := arp.NewResolver(arp.ResolverConfig{MAC: mac, IPv4: dirIP,
		Sender: arp.SenderFunc(func([]byte) error { return nil }), OnEvent: onEvent})
	if err != nil {
		b.Fatal(err)
	}
	d.resolver = res // applyNeighbor checks events against it
	for _, rs := range svc.RealServers[1:] {
		if err := res.Want(rs.Address); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := res.Tick(time.Now()); err != nil { // the requests go out
		b.Fatal(err)
	}
	st, err := step.New(step.Config{Forwarder: fw, Resolver: res})
	if err != nil {
		b.Fatal(err)
	}
	r := &resolvingLoop{fw: fw, step: st, out: make([]link.Frame, 0, 128)}
	l2 := framegen.L2{Src: routerMAC, Dst: dirMAC}
	for i, rs := range svc.RealServers[1:] {
		batch := link.NewFrames(64)
		rsMAC := net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}
		batch[0].Data = append(batch[0].Data[:0], arpReply(rsMAC, rs.Address, dirMAC, dirIP)...)
		for j := 1; j < len(batch); j++ {
			f := framegen.UDP(l2, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(j)}), uint16(1000+i)), netip.AddrPortFrom(vip, 9), make([]byte, 18))
			batch[j].Data = append(batch[j].Data[:0], f...)
		}
		r.batches = append(r.batches, batch)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.neighbors.run(ctx, d.applyNeighbor) }()
	r.stop = func() {
		// Wait for the queue to drain, so the next round starts clean
		// and every event was applied.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if slices.IndexFunc(fw.Stats()[0].RealServers, func(s forwarder.RealServerStats) bool { return s.MAC == nil }) < 0 {
				break
			}
		}
		cancel()
		wg.Wait()
	}
	return r
}

// TestNeighborEventsLeaveTheLoop: a resolver event raised in a batch is
// applied by the queue's goroutine, not inside Handle: the batch returns
// before the server becomes usable, and it does become usable.
func TestNeighborEventsLeaveTheLoop(t *testing.T) {
	q := newNeighborQueue()
	applied := make(chan arp.Event, 1)
	block := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.run(ctx, func(e arp.Event) { <-block; applied <- e })
	e := arp.Event{Kind: arp.EventResolved, Addr: netip.MustParseAddr("198.18.0.11")}
	done := make(chan struct{})
	go func() { q.push(e); close(done) }()
	select {
	case <-done: // push returned while apply is blocked
	case <-time.After(5 * time.Second):
		t.Fatal("push waited for the event to be applied")
	}
	close(block)
	select {
	case got := <-applied:
		if got != e {
			t.Fatalf("applied %+v, want %+v", got, e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event never applied")
	}
}
