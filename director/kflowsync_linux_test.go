package director

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

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
	fillSynced(t, d1, entries, 2, 15*time.Minute) // ESTABLISHED
	d3, _ := syncDirectorWith(t, &n, a3, syncOpts{maxConns: 4 * entries}, a1, a2, a3, a4)
	fillSynced(t, d3, entries, 2, 15*time.Minute)
	d4, _ := syncDirectorWith(t, &n, a4, syncOpts{maxConns: 4 * entries}, a1, a2, a3, a4)
	fillSynced(t, d4, entries, 2, 15*time.Minute)

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
	// forward sends an ACK of the first n clients' connections through
	// d2's worker, flushing its kernel flows as the loop does after each
	// batch.
	forward := func(n int) {
		for i := range n {
			c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 40000)
			f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 2, 2, nil)
			w.mu.Lock()
			w.fw.Process(f, &forwarder.Meta{Time: d2.clock().UnixNano()})
			d2.flushKernelFlows(w, w.kflows)
			w.mu.Unlock()
		}
	}
	forward(entries)
	time.Sleep(300 * time.Millisecond) // the other peers' first answers end
	forward(entries)
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
	forward(100) // frames after the copy
	t.Logf("after 100 more frames: kernel_flows_out %d, ctl kernel_flows=%q", d2.Snapshot(false).KernelFlowsOut, d2.Snapshot(false).KernelFlows)
	if failed || strings.Contains(logs.String(), "kernel flows off") {
		t.Fatalf("kernel flows turned off for good by a bulk copy on a backup: %s", grepLine(logs.String(), "kernel flows off"))
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
