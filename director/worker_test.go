package director

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestWorkers runs a director with two workers, each on its own in-memory
// port, the test playing the kernel's fanout (link.ClientHash): each
// client's frames go to the worker FanoutHash picks. Every connection is
// forwarded from its worker's port, the listing shows the connections of
// both tables, and an Apply that would move clients between workers is
// refused.
func TestWorkers(t *testing.T) {
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
		RealServers: resolvedReals(),
	}}}
	p0, w0 := link.Pipe()
	p1, w1 := link.Pipe()
	wires := []link.Port{w0, w1}
	d, err := New(cfg, p0, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond,
		ExtraPorts: []link.Port{p1}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, w0, w1)
	if len(d.workers) != 2 {
		t.Fatalf("%d workers, want 2", len(d.workers))
	}
	dirMAC := d.port.HardwareAddr()
	perWorker := make([]int, 2)
	const clients = 16
	for i := range clients {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), 40000)
		wi := FanoutHash(cfg).Index(c.Addr(), 2)
		perWorker[wi]++
		syn := framegen.TCP(framegen.L2{Src: routerMAC, Dst: dirMAC}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
		send(t, wires[wi], syn)
		out := expectFrame(t, wires[wi], "forwarded SYN of "+c.String(), func(p gopacket.Packet) bool {
			tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			return ok && tcp.SYN && int(tcp.SrcPort) == 40000 && bytes.Equal(p.LinkLayer().LayerContents()[6:12], dirMAC) &&
				bytes.Equal(p.NetworkLayer().NetworkFlow().Src().Raw(), c.Addr().AsSlice())
		})
		if !bytes.Equal(out[12:], syn[12:]) {
			t.Fatal("forwarded frame changed beyond the MACs")
		}
	}
	if perWorker[0] == 0 || perWorker[1] == 0 {
		t.Fatalf("clients per worker %v: the test needs both", perWorker)
	}
	snap := d.Snapshot(true)
	if len(snap.ConnEntries) != clients {
		t.Fatalf("listing shows %d connections, want %d (both workers' tables)", len(snap.ConnEntries), clients)
	}
	if len(snap.Workers) != 2 {
		t.Fatalf("snapshot shows %d workers, want 2", len(snap.Workers))
	}
	for i, w := range snap.Workers {
		if w.Entries != perWorker[i] || w.Frames != uint64(perWorker[i]) {
			t.Errorf("worker %d: %+v, want %d entries and frames", i, w, perWorker[i])
		}
	}

	// Persistence with a /24 netmask would sort clients by their /24:
	// not live, with two workers.
	next := cfg.Clone()
	next.Services[0].Persistence = time.Minute
	next.Services[0].PersistenceBits = 24
	if err := d.Apply(next); !errors.Is(err, ErrRestartNeeded) {
		t.Fatalf("Apply of a new persistence netmask with 2 workers: %v, want ErrRestartNeeded", err)
	}
	// Persistence by whole address keeps the hash: applied.
	next.Services[0].PersistenceBits = 32
	if err := d.Apply(next); err != nil {
		t.Fatalf("Apply of /32 persistence: %v", err)
	}
}

func TestFanoutHash(t *testing.T) {
	v6 := netip.MustParseAddr("2001:2::100")
	for _, tc := range []struct {
		services []config.Service
		want     link.ClientHash
	}{
		{nil, link.ClientHash{}},
		{[]config.Service{{VIP: vip, PersistenceBits: 24}}, link.ClientHash{}}, // no persistence: netmask unused
		{[]config.Service{{VIP: vip, Persistence: time.Minute, PersistenceBits: 24}, {VIP: vip, Persistence: time.Minute, PersistenceBits: 16}}, link.ClientHash{Bits4: 16}},
		{[]config.Service{{VIP: v6, Persistence: time.Minute, PersistenceBits: 64}, {VIP: vip, Persistence: time.Minute, PersistenceBits: 32}}, link.ClientHash{Bits6: 64}},
	} {
		if got := FanoutHash(&config.Config{Services: tc.services}); got != tc.want {
			t.Errorf("FanoutHash(%+v) = %+v, want %+v", tc.services, got, tc.want)
		}
	}
}
