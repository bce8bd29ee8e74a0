package director

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
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
	frames := link.NewFrames(16)
	forwarded := func(want []byte) {
		t.Helper()
		for {
			n, err := wire.ReadBatch(ctx, frames)
			if err != nil {
				t.Fatalf("waiting for a forwarded frame: %v", err)
			}
			for _, f := range frames[:n] {
				if bytes.Equal(f.Data[0:6], rs2MAC) && bytes.Equal(f.Data[12:], want[12:]) {
					return
				}
			}
		}
	}
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

// rs2Config is one TCP service on the VIP with one real server, rs2,
// whose MAC is known: frames are forwarded without resolving anything.
func rs2Config() *config.Config {
	return &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.12"), Weight: 1, MAC: rs2MAC}},
	}}}
}
