package director

import (
	"bytes"
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
)

// aheadCounter is a Port that counts the batches read ahead through it.
type aheadCounter struct {
	link.Port
	ahead atomic.Int64
}

func (p *aheadCounter) TryReadBatch(frames []link.Frame) (int, error) {
	n, err := p.Port.(link.ReadAheader).TryReadBatch(frames)
	if n > 0 {
		p.ahead.Add(1)
	}
	return n, err
}

// TestServeReadsAhead: frames that arrive faster than batches are handled
// are read ahead (the loop holds two batches), and each is forwarded
// once, unchanged beyond its MACs.
func TestServeReadsAhead(t *testing.T) {
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 4096, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
		RealServers: resolvedReals(),
	}}}
	dirPort, wire := link.Pipe()
	port := &aheadCounter{Port: dirPort}
	d, err := New(cfg, port, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	dirMAC := dirPort.HardwareAddr()

	const total = 4*link.DefaultBatchSize + 5
	sent := map[netip.Addr][]byte{}
	out := make([]link.Frame, 0, total)
	for i := range total {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1 + byte(i/200), byte(i % 200)}), 40000)
		syn := framegen.TCP(framegen.L2{Src: routerMAC, Dst: dirMAC}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
		sent[c.Addr()] = syn
		out = append(out, link.Frame{Data: syn})
	}
	// One write: the director finds full batches queued behind each other.
	if n, err := wire.WriteBatch(out); n != total || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in := link.NewFrames(64)
	got := map[netip.Addr]bool{}
	for len(got) < total {
		n, err := wire.ReadBatch(ctx, in)
		if err != nil {
			t.Fatalf("after %d of %d forwarded SYNs: %v", len(got), total, err)
		}
		for _, f := range in[:n] {
			if len(f.Data) < 34 || !bytes.Equal(f.Data[6:12], dirMAC) || f.Data[12] != 0x08 || f.Data[13] != 0 {
				continue // the director's own ARP and NDP
			}
			c := netip.AddrFrom4([4]byte(f.Data[26:30]))
			syn, ok := sent[c]
			if !ok || got[c] {
				t.Fatalf("forwarded a SYN from %v: unknown or twice", c)
			}
			if !bytes.Equal(f.Data[12:], syn[12:]) {
				t.Fatalf("SYN from %v changed beyond the MACs", c)
			}
			got[c] = true
		}
	}
	if port.ahead.Load() == 0 {
		t.Error("no batch was read ahead")
	}
	t.Logf("%d batches read ahead", port.ahead.Load())
}
