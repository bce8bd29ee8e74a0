package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
	// A veth has no zero-copy: the bind without a mode flag fell back,
	// and the log says so.
	if !strings.Contains(p.logs.String(), "af_xdp=copy") {
		t.Errorf("drlb did not report its AF_XDP sockets in copy mode:\n%s", p.logs.String())
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
