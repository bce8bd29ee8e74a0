package director

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
)

// noLanePort is a Port whose trusted lane did not load.
type noLanePort struct {
	link.Port
	calls atomic.Int32
}

func (p *noLanePort) TrustClients([]netip.Addr) error {
	p.calls.Add(1)
	return fmt.Errorf("test: %w", link.ErrNoTrustLane)
}

// TestNoTrustLane: a port without a trusted lane is told about clients
// once, and the director goes on forwarding without it (the loop kept
// the last batch's clients and called a nil truster with them).
func TestNoTrustLane(t *testing.T) {
	cfg := rs2Config()
	dirPort, wire := link.Pipe()
	port := &noLanePort{Port: dirPort}
	d, err := New(cfg, port, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	l2 := framegen.L2{Src: routerMAC, Dst: d.port.HardwareAddr()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	forwarded := func(want []byte) { t.Helper(); awaitForwarded(ctx, t, wire, rs2MAC, want) }
	// Each frame in a batch of its own: handshakes over several batches.
	for i := range 3 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), 40000)
		for _, flags := range []string{"S", "A", "A"} {
			f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), flags, 1, 1, nil)
			send(t, wire, f)
			forwarded(f)
		}
	}
	if n := port.calls.Load(); n != 1 {
		t.Errorf("TrustClients called %d times, want once", n)
	}
}

// flakyLanePort is a Port whose trusted lane refuses its first clients
// (a map update failed) and takes the rest. At each call it notes the
// trusted-clients count, as a Prometheus scrape would see it then.
type flakyLanePort struct {
	link.Port
	count func() uint64

	mu      sync.Mutex
	calls   int
	counts  []uint64
	trusted []netip.Addr
}

func (p *flakyLanePort) TrustClients(addrs []netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.counts = append(p.counts, p.count())
	if p.calls == 1 {
		return errors.New("test: map update failed")
	}
	p.trusted = append(p.trusted, addrs...)
	return nil
}

// TestTrustedClientsCounted: drlb_trusted_clients_total counts the
// clients the lane took, once each, and never goes down: a client the
// lane refused is not counted (it is reported again at its next
// handshake, and counted then). It was counted when reported and taken
// back on the failure, which a Prometheus counter shows as a reset.
func TestTrustedClientsCounted(t *testing.T) {
	cfg := rs2Config()
	dirPort, wire := link.Pipe()
	port := &flakyLanePort{Port: dirPort}
	d, err := New(cfg, port, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	port.count = func() uint64 { return d.Snapshot(false).Overload.TrustedClients }
	serve(t, d, wire)
	l2 := framegen.L2{Src: routerMAC, Dst: d.port.HardwareAddr()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	forwarded := func(want []byte) { t.Helper(); awaitForwarded(ctx, t, wire, rs2MAC, want) }
	c0 := netip.AddrFrom4([4]byte{198, 18, 1, 10})
	c1 := netip.AddrFrom4([4]byte{198, 18, 1, 11})
	// Each frame in a batch of its own: a handshake, then its client's
	// TrustClients, before the next. c0's first is refused.
	for _, c := range []netip.AddrPort{
		netip.AddrPortFrom(c0, 40000), netip.AddrPortFrom(c0, 40001), netip.AddrPortFrom(c1, 40000),
	} {
		for _, flags := range []string{"S", "A", "A"} {
			f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), flags, 1, 1, nil)
			send(t, wire, f)
			forwarded(f)
		}
	}
	for d.Snapshot(false).Overload.TrustedClients < 2 {
		if ctx.Err() != nil {
			t.Fatalf("trusted clients %d, want 2", d.Snapshot(false).Overload.TrustedClients)
		}
		time.Sleep(time.Millisecond)
	}
	port.mu.Lock()
	defer port.mu.Unlock()
	if !slices.Equal(port.trusted, []netip.Addr{c0, c1}) || !slices.Equal(port.counts, []uint64{0, 0, 1}) {
		t.Fatalf("lane took %v, count at each call %v; want [%v %v], [0 0 1]", port.trusted, port.counts, c0, c1)
	}
	if n := d.Snapshot(false).Overload.TrustedClients; n != 2 {
		t.Fatalf("trusted clients %d, want 2", n)
	}
}

// rs2Config is one TCP service on the VIP with one real server, rs2,
// whose MAC is known: frames are forwarded without resolving anything.
func rs2Config() *config.Config {
	return &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.12"), Weight: 1, MAC: rs2MAC}},
	}}}
}

// awaitForwarded reads wire until want comes out to mac, unchanged after
// the MACs.
func awaitForwarded(ctx context.Context, t *testing.T, wire link.Port, mac net.HardwareAddr, want []byte) {
	t.Helper()
	frames := link.NewFrames(16)
	for {
		n, err := wire.ReadBatch(ctx, frames)
		if err != nil {
			t.Fatalf("waiting for a forwarded frame: %v", err)
		}
		for _, f := range frames[:n] {
			if bytes.Equal(f.Data[0:6], mac) && bytes.Equal(f.Data[12:], want[12:]) {
				return
			}
		}
	}
}
