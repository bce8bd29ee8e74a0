package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// xdpOn reports whether an XDP program is attached to h's LAN interface.
func xdpOn(t *testing.T, l *testbed.Lab, h *testbed.Host) bool {
	t.Helper()
	_, lk := lanLink(t, h)
	attrs := lk.Attrs()
	return attrs.Xdp != nil && attrs.Xdp.Attached
}

// TestAFXDP: `drlb run -io afxdp` forwards HTTP through the VIP with an
// exact rr spread, answers ARP for the VIP, keeps the XDP program attached
// while it runs and detaches it when it stops.
func TestAFXDP(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 3})
	cfg := filepath.Join(t.TempDir(), "drlb.yaml")
	writeConfig(t, l, cfg, "rr", nil)
	var vipAnswers int
	rcap := startCapture(t, l, l.Router, l.Router.Iface, func(f []byte) {
		if len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && bytes.Equal(f[22:28], l.Director.MAC) {
			vipAnswers++
		}
	})
	flushNeighbors(t, l, l.Router)
	// XDP frames carry no partial-checksum state: a veth passes a local
	// sender's unfinished checksum along, which AF_XDP would forward as it
	// is (every connection then times out). The router completes its
	// checksums, as frames on a physical wire always are.
	if err := l.Do(l.Router, func() error { return ethtool.Set(l.Router.Iface, ethtool.TxChecksum, false) }); err != nil {
		t.Fatal(err)
	}
	p := startDirector(t, l, "run", "-c", cfg, "-io", "afxdp")
	if !strings.Contains(p.logs.String(), "io afxdp") {
		t.Fatalf("drlb did not report the AF_XDP backend:\n%s", p.logs.String())
	}
	if !xdpOn(t, l, l.Director) {
		t.Fatal("no XDP program on the director's interface while drlb runs")
	}
	got := distribution(t, l, l.Client, 300)
	for _, rs := range l.RealServers {
		if got[rs.Name] != 100 {
			t.Errorf("rr over AF_XDP: %s answered %d of 300, want 100 (%v)", rs.Name, got[rs.Name], got)
		}
	}
	// A 1 MB upload: many full-size segments from a local sender.
	c := l.HTTPClient(l.Client)
	upload(t, c, fmt.Sprintf("http://%s/upload", l.VIP), 1<<20)
	c.CloseIdleConnections()
	unlock := rcap.settle()
	if vipAnswers == 0 {
		t.Error("the router saw no ARP answer from the director")
	}
	unlock()
	if mac := neighborMAC(t, l, l.Router, l.VIP); !bytes.Equal(mac, l.Director.MAC) {
		t.Errorf("router's neighbor entry for the VIP is %v, want the director's %v", mac, l.Director.MAC)
	}
	p.stop()
	if xdpOn(t, l, l.Director) {
		t.Error("XDP program still attached after drlb stopped")
	}
	t.Logf("rr over AF_XDP: %v; %d ARP answers from the director", got, vipAnswers)
}

// TestIOAuto: -io auto on the lab's veth picks AF_PACKET and says why (a
// virtual interface passes local senders' partial checksums, which XDP
// cannot carry), and the director forwards.
func TestIOAuto(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 2})
	cfg := filepath.Join(t.TempDir(), "drlb.yaml")
	writeConfig(t, l, cfg, "rr", nil)
	p := startDirector(t, l, "run", "-c", cfg, "-io", "auto")
	if logs := p.logs.String(); !strings.Contains(logs, "io auto: afpacket") || !strings.Contains(logs, "virtual interface") {
		t.Fatalf("drlb did not say it picked AF_PACKET for a virtual interface:\n%s", logs)
	}
	if xdpOn(t, l, l.Director) {
		t.Fatal("an XDP program is attached with -io auto on veth")
	}
	got := distribution(t, l, l.Client, 20)
	for _, rs := range l.RealServers {
		if got[rs.Name] != 10 {
			t.Errorf("rr with -io auto: %s answered %d of 20, want 10 (%v)", rs.Name, got[rs.Name], got)
		}
	}
}

// TestAFXDPKernelFlows: with -xdp-flows the XDP program forwards the
// frames of established connections itself: an 8 MB upload over one
// connection arrives intact, most of its segments never reach drlb's
// sockets (kernel_forwarded), the server's packet counter still counts
// them, and new connections still spread rr. In generic mode, since
// native XDP_TX on a veth is dropped unless its peer takes it.
func TestAFXDPKernelFlows(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 3})
	cfg := filepath.Join(t.TempDir(), "drlb.yaml")
	writeConfig(t, l, cfg, "rr", nil)
	if err := l.Do(l.Router, func() error { return ethtool.Set(l.Router.Iface, ethtool.TxChecksum, false) }); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	p := startDirector(t, l, "run", "-c", cfg, "-io", "afxdp", "-xdp-flows", "-xdp-generic", "-ctl", sock)
	p.waitLog("kernel flows on", 1, 10*time.Second)
	c := l.HTTPClient(l.Client)
	c.Timeout = 30 * time.Second // frames the kernel loses fail the test, not the package's timeout
	const size = 8 << 20
	upload(t, c, fmt.Sprintf("http://%s/upload", l.VIP), size)
	c.CloseIdleConnections()
	got := distribution(t, l, l.Client, 30)
	for _, rs := range l.RealServers {
		if got[rs.Name] != 10 {
			t.Errorf("rr with kernel flows: %s answered %d of 30, want 10 (%v)", rs.Name, got[rs.Name], got)
		}
	}
	// The kernel's counts reach drlb every 500 ms: read until they
	// cover the upload, or 5 s.
	const segments = size / 1448 // 8 MB in segments of at most 1448 bytes: 5,800 or more frames
	var s control.Snapshot
	var packets uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		s, err = control.Get(ctx, sock, false)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		packets = 0
		for _, rs := range s.Services[0].RealServers {
			packets += rs.InPackets
		}
		if packets >= segments && s.KernelForwarded >= segments/2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("kernel forwarded %d frames; frames by reason %v; the servers counted %d packets", s.KernelForwarded, s.Frames, packets)
	if s.KernelForwarded < segments/2 {
		t.Errorf("the kernel forwarded %d frames of an 8 MB upload, want most of its %d segments", s.KernelForwarded, segments)
	}
	if packets < segments {
		t.Errorf("the servers' packet counters say %d, fewer than the upload's %d segments", packets, segments)
	}
	p.stop()
	if xdpOn(t, l, l.Director) {
		t.Error("XDP program still attached after drlb stopped")
	}
}
