package director

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/link"
)

// TestSyncTakeBackWritten: a backup that had handed flows to its
// kernel (a former master, say after a link flap) asks its peers for
// their tables again (bulkAgain). Every record for such a flow takes it
// back (ApplySync), and the sync receiver writes the removals at once:
// left to followFlows' next tick (50 ms), they piled up, and two or three
// peers' paced answers (~160k entries/s each) passed the 8192 the
// forwarder keeps, which turned kernel flows off for good.
func TestSyncTakeBackWritten(t *testing.T) {
	var n fakeNet
	a1, a2, a3, a4 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("198.18.0.4"), netip.MustParseAddr("198.18.0.5")
	const entries = 20000
	d1, _ := syncDirectorWith(t, &n, a1, syncOpts{maxConns: 4 * entries}, a1, a2, a3, a4)
	fillEstablished(t, d1, entries)
	d3, _ := syncDirectorWith(t, &n, a3, syncOpts{maxConns: 4 * entries}, a1, a2, a3, a4)
	fillEstablished(t, d3, entries)
	d4, _ := syncDirectorWith(t, &n, a4, syncOpts{maxConns: 4 * entries}, a1, a2, a3, a4)
	fillEstablished(t, d4, entries)

	// d2: kernel flows over a spy port.
	dirPort, wire := link.Pipe()
	spy := &flowPortSpy{Port: dirPort, on: make(chan bool, 16)}
	logs := new(testutil.SyncBuffer)
	cfg := syncConfig(a1, a2, a3, a4)
	cfg.MaxConns = 4 * entries
	d2, err := New(cfg, spy, Options{IPv4: a2, VRRP: newFakeVRRP(), Sync: n.conn(a2), SyncKey: syncKey,
		AnnounceCount: 1, AnnounceInterval: time.Millisecond, KernelFlows: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d2, wire)
	waitFor(t, "d2's first bulk copy", func() bool { return d2.Snapshot(false).HA.Sync.Bulk == "done" })

	// d2 forwards a frame of each connection: each is handed out.
	w := d2.workers[0]
	l2 := framegen.L2{Src: routerMAC, Dst: d2.port.HardwareAddr()}
	for i := range entries {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 40000)
		f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 2, 2, nil)
		w.mu.Lock()
		w.fw.Process(f, &forwarder.Meta{Time: d2.clock().UnixNano()})
		d2.flushKernelFlows(w, w.kflows) // as the loop does after each batch
		w.mu.Unlock()
	}
	time.Sleep(300 * time.Millisecond) // the other peers' first answers end
	for i := range entries {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 40000)
		f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 2, 2, nil)
		w.mu.Lock()
		w.fw.Process(f, &forwarder.Meta{Time: d2.clock().UnixNano()})
		d2.flushKernelFlows(w, w.kflows)
		w.mu.Unlock()
	}
	if out := w.fw.KernelFlowsOut(); out != entries {
		t.Fatalf("%d flows handed out, want %d", out, entries)
	}
	w.mu.Lock()
	failed := w.kflows.failed
	w.mu.Unlock()
	if failed {
		t.Fatal("kernel flows off before the bulk copy")
	}

	d2.sync.bulkAgain() // the link came back
	waitFor(t, "d2's second bulk copy", func() bool { return d2.Snapshot(false).HA.Sync.Bulk == "done" })
	time.Sleep(200 * time.Millisecond) // the second peer's answer, and a few follower ticks
	w.mu.Lock()
	failed = w.kflows.failed
	w.mu.Unlock()
	t.Logf("kernel flows out now %d; failed %v; ctl says kernel_flows=%q", w.fw.KernelFlowsOut(), failed, d2.Snapshot(false).KernelFlows)
	for i := range 100 { // frames after the failure: still "handed out"
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 40000)
		f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 2, 2, nil)
		w.mu.Lock()
		w.fw.Process(f, &forwarder.Meta{Time: d2.clock().UnixNano()})
		d2.flushKernelFlows(w, w.kflows)
		w.mu.Unlock()
	}
	t.Logf("after 100 more frames: kernel_flows_out %d, ctl kernel_flows=%q", d2.Snapshot(false).KernelFlowsOut, d2.Snapshot(false).KernelFlows)
	if failed || strings.Contains(logs.String(), "kernel flows off") {
		t.Fatalf("kernel flows turned off for good by a bulk copy on a backup: %s", grepLine(logs.String(), "kernel flows off"))
	}
}

func fillEstablished(t *testing.T, d *Director, n int) {
	t.Helper()
	now := d.clock().UnixNano()
	for i := range n {
		e := connsync.Entry{Op: connsync.OpUpsert, Proto: 6, State: 2, VIP: vip, VPort: 80, SvcPort: 80, Real: realAt(1, 1, nil).Address,
			CIP: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), CPort: 40000, Timeout: 15 * time.Minute}
		w := d.workerOf(e.CIP)
		w.mu.Lock()
		res := w.fw.ApplySync(&e, now)
		w.mu.Unlock()
		if res != forwarder.SyncApplied {
			t.Fatalf("entry %d: %s", i, forwarder.SyncResultNames[res])
		}
	}
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
