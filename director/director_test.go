package director

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	routerMAC = net.HardwareAddr{2, 0, 0, 0, 0, 0xaa}
	rs1MAC    = net.HardwareAddr{2, 0, 0, 0, 0, 0x11}
	rs2MAC    = net.HardwareAddr{2, 0, 0, 0, 0, 0x12}
	vip       = netip.MustParseAddr("198.18.0.100")
)

// resolvedReals are two real servers whose MACs the config gives: a
// director forwards to them without asking ARP first.
func resolvedReals() []config.RealServer {
	return []config.RealServer{
		{Address: netip.MustParseAddr("198.18.0.11"), Weight: 1, MAC: rs1MAC},
		{Address: netip.MustParseAddr("198.18.0.12"), Weight: 1, MAC: rs2MAC},
	}
}

// lan starts a director on one end of an in-memory pipe and returns the
// other end, where the test plays router and real servers.
func lan(t *testing.T, cfg *config.Config) (link.Port, *Director) {
	t.Helper()
	dirPort, wire := link.Pipe()
	d, err := New(cfg, dirPort, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	return wire, d
}

// serve runs d until the test ends, then checks it stopped cleanly and
// closes the test's ends of the pipes.
func serve(t *testing.T, d *Director, wires ...link.Port) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not stop")
		}
		for _, w := range wires {
			w.Close()
		}
	})
}

// expectFrame reads frames from the wire until match accepts one.
func expectFrame(t *testing.T, wire link.Port, what string, match func(gopacket.Packet) bool) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	frames := link.NewFrames(16)
	for {
		n, err := wire.ReadBatch(ctx, frames)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		for _, f := range frames[:n] {
			pkt := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
			if match(pkt) {
				return append([]byte(nil), f.Data...)
			}
		}
	}
}

func send(t *testing.T, wire link.Port, data []byte) {
	t.Helper()
	f := link.NewFrames(1)
	f[0].Data = append(f[0].Data[:0], data...)
	if _, err := wire.WriteBatch(f); err != nil {
		t.Fatal(err)
	}
}

func isARP(op uint16, target netip.Addr) func(gopacket.Packet) bool {
	return func(p gopacket.Packet) bool {
		a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok || a.Operation != op {
			return false
		}
		dst := a.DstProtAddress
		if op == layers.ARPReply {
			dst = a.SourceProtAddress
		}
		got, _ := netip.AddrFromSlice(dst)
		return got == target
	}
}

func TestServeAnswersARPAndForwards(t *testing.T) {
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
		RealServers: []config.RealServer{
			{Address: netip.MustParseAddr("198.18.0.11"), Weight: 1},
			{Address: netip.MustParseAddr("198.18.0.12"), Weight: 1, MAC: rs2MAC},
		},
	}}}
	wire, d := lan(t, cfg)
	dirMAC := d.port.HardwareAddr()

	// The director resolves rs1 by ARP from its own address.
	expectFrame(t, wire, "ARP request for rs1", isARP(layers.ARPRequest, netip.MustParseAddr("198.18.0.11")))
	reply := arpReply(rs1MAC, netip.MustParseAddr("198.18.0.11"), dirMAC, netip.MustParseAddr("198.18.0.2"))
	send(t, wire, reply)

	// The router asks who has the VIP: the director answers with its MAC.
	send(t, wire, framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, netip.MustParseAddr("198.18.0.1"), vip))
	ans := expectFrame(t, wire, "ARP reply for the VIP", isARP(layers.ARPReply, vip))
	if !bytes.Equal(ans[22:28], dirMAC) {
		t.Fatalf("VIP answered with %x, want the director's %x", ans[22:28], dirMAC)
	}

	// Wait until rs1 is usable, then two clients are spread by rr.
	deadline := time.Now().Add(5 * time.Second)
	for d.Forwarder().Stats()[0].RealServers[0].MAC == nil {
		if time.Now().After(deadline) {
			t.Fatal("rs1 never resolved")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// SetMAC stores the MAC, then rebuilds the scheduler, under the
	// forwarder's control lock: the same MAC again waits for that lock,
	// so rr has rs1 once it returns.
	if err := d.Forwarder().SetMAC(netip.MustParseAddr("198.18.0.11"), rs1MAC); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), 40000)
		syn := framegen.TCP(framegen.L2{Src: routerMAC, Dst: dirMAC}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
		send(t, wire, syn)
		out := expectFrame(t, wire, "forwarded SYN", func(p gopacket.Packet) bool {
			tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			return ok && tcp.SYN && bytes.Equal(p.LinkLayer().LayerContents()[6:12], dirMAC)
		})
		if !bytes.Equal(out[12:], syn[12:]) {
			t.Fatal("forwarded frame changed beyond the MACs")
		}
		seen[net.HardwareAddr(out[0:6]).String()] = true
	}
	if !seen[rs1MAC.String()] || !seen[rs2MAC.String()] {
		t.Fatalf("rr sent the two clients to %v, want both real servers", seen)
	}
}

func arpReply(srcMAC net.HardwareAddr, src netip.Addr, dstMAC net.HardwareAddr, dst netip.Addr) []byte {
	buf := gopacket.NewSerializeBuffer()
	_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPReply, SourceHwAddress: srcMAC, SourceProtAddress: src.AsSlice(),
			DstHwAddress: dstMAC, DstProtAddress: dst.AsSlice()})
	return buf.Bytes()
}

// TestConnListingInChunks: a connection listing takes each worker's lock
// for one chunk of the table at a time (listChunk slots) and releases it
// in between, so that the worker's batches never wait for a whole table;
// it still lists every entry once, up to maxListedConns.
func TestConnListingInChunks(t *testing.T) {
	const conns = 3 * listChunk
	cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
	cfg.MaxConns = 4 * conns // slots: several chunks
	d := pipeDirector(t, cfg)
	l2 := framegen.L2{Src: routerMAC, Dst: d.port.HardwareAddr()}
	now := time.Now().UnixNano()
	for i := range conns {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 1024)
		f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
		if res := d.fw.Process(f, &forwarder.Meta{Time: now}); res.Verdict != forwarder.Forward {
			t.Fatalf("connection %d: %v", i, res)
		}
	}
	chunks, held := 0, 0
	d.afterListChunk = func(i int) {
		chunks++
		if !d.workers[i].mu.TryLock() {
			held++
			return
		}
		d.workers[i].mu.Unlock()
	}
	snap := d.Snapshot(true)
	if len(snap.ConnEntries) != conns || snap.ConnEntriesOmitted != 0 {
		t.Errorf("listed %d (omitted %d), want %d", len(snap.ConnEntries), snap.ConnEntriesOmitted, conns)
	}
	seen := map[netip.AddrPort]bool{}
	for _, e := range snap.ConnEntries {
		if seen[e.Client] {
			t.Fatalf("%v listed twice", e.Client)
		}
		seen[e.Client] = true
	}
	if want := (d.fw.TableSlots() + listChunk - 1) / listChunk; chunks != want || held != 0 {
		t.Errorf("%d chunks, want %d (%d slots); %d with the worker's lock still held after it", chunks, want, d.fw.TableSlots(), held)
	}
}

// pipeDirector is a Director for cfg on an in-memory port (link.Pipe),
// logging nowhere, both ends closed when t ends. It does not serve.
func pipeDirector(t *testing.T, cfg *config.Config) *Director {
	t.Helper()
	dirPort, wire := link.Pipe()
	t.Cleanup(func() { wire.Close(); dirPort.Close() })
	d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestServeStoppedBeforeStart: a director whose context ended during
// start-up (SIGTERM while the tables were faulted in) returns without
// announcing its VIPs or calling Ready: that would draw the VIPs to a
// director on its way out, and tell systemd READY after STOPPING.
func TestServeStoppedBeforeStart(t *testing.T) {
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr", RealServers: resolvedReals(),
	}}}
	dirPort, wire := link.Pipe()
	defer wire.Close()
	ready := false
	d, err := New(cfg, dirPort, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond,
		Ready: func() { ready = true }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Serve(ctx); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if ready {
		t.Error("Ready was called after the context ended")
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer rcancel()
	frames := link.NewFrames(16)
	for {
		n, err := wire.ReadBatch(rctx, frames)
		if err != nil {
			break // nothing more: the pipe is closed or quiet
		}
		for _, f := range frames[:n] {
			if p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default); isARP(layers.ARPRequest, vip)(p) || isARP(layers.ARPReply, vip)(p) {
				t.Fatal("a director stopped before it started announced its VIP")
			}
		}
	}
}
