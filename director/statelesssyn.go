package director

import (
	"context"
	"errors"
	"time"

	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/link"
)

// synEvery is how often a worker whose port forwards SYNs in the kernel
// (link.StatelessSYNPort: the AF_XDP port's XDP program, an AF_PACKET
// worker's socket filter and tc program) reads the
// kernel's count and turns the forwarding on or off with the table's
// pressure; while on, the tables are rewritten as soon as the forwarder's
// servers change (StatelessSYNGeneration), and every synTablesEvery
// anyway.
const (
	synEvery       = 50 * time.Millisecond
	synTablesEvery = 5 * time.Second
)

// synLane is a worker's view of its port's kernel SYN forwarding.
type synLane struct {
	port     link.StatelessSYNPort
	on       bool
	sent     uint64 // the kernel's count when last read
	gen      uint64 // the forwarder's generation the tables were built from
	tablesAt int64  // last table write
	left     int    // tables the port's maps had no room for, as last logged
}

// followSYNs runs statelessSYNs every synEvery, and at once when kernel
// forwarding is held or resumed (Director.holdKernelFlows: a SYN the
// kernel side takes while held could be lost), until ctx ends or the
// port fails; on the way out the forwarding is turned off (best effort:
// a closed port forwards nothing).
func (d *Director) followSYNs(ctx context.Context, w *worker, port link.StatelessSYNPort) {
	l := &synLane{port: port}
	t := time.NewTicker(synEvery)
	defer t.Stop()
	defer func() { _, _ = port.SetStatelessSYNs(false, nil) }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.synHoldChanged:
		}
		if !d.statelessSYNs(w, l, d.clock().UnixNano()) {
			return
		}
	}
}

// statelessSYNs follows w's forwarder in the port's kernel side: the
// SYNs the kernel forwarded since the last call are noted in the
// forwarder (they count as syn-stateless, and keep the adoption window
// open and the pressure on, as if the forwarder had placed them), and the
// forwarding is on exactly while the forwarder places SYNs without entry.
// It returns false once the port has failed (logged).
func (d *Director) statelessSYNs(w *worker, l *synLane, now int64) bool {
	sent, err := l.port.StatelessSYNsSent()
	if err != nil {
		return d.synLaneFailed(err)
	}
	if delta := sent - l.sent; delta > 0 {
		l.sent = sent
		w.mu.Lock()
		w.fw.NoteStatelessSYNs(delta, now)
		w.mu.Unlock()
	}
	// With the XDP program detached from outside (xdpwatch_linux.go)
	// nothing forwards SYNs in the kernel any more: off, and said so;
	// with AF_PACKET, neither while the tc program is not first at tc
	// ingress (kflowhold_linux.go: the SYNs the socket filter leaves to
	// it could be lost).
	on := w.fw.StatelessSYNsOn() && !d.xdpDetached.Load() && !d.kflowsHeld.Load()
	gen := w.fw.StatelessSYNGeneration()
	if on == l.on && (!on || gen == l.gen && now-l.tablesAt < int64(synTablesEvery)) {
		return true
	}
	left, err := l.port.SetStatelessSYNs(on, linkSYNTables(w.fw.StatelessSYNTables()))
	if err != nil {
		return d.synLaneFailed(err)
	}
	if on != l.on {
		d.log.Info("SYNs forwarded in the kernel while the connection table is under pressure", "on", on)
	}
	if on && left != l.left {
		l.left = left
		if left > 0 {
			d.log.Warn("kernel SYNs: some services' bucket tables do not fit the kernel's maps: their SYNs stay drlb's under a flood (fewer workers, or smaller mh tables, leave room)", "services left out", left)
		}
	}
	l.on, l.gen, l.tablesAt = on, gen, now
	return true
}

func (d *Director) synLaneFailed(err error) bool {
	if !errors.Is(err, link.ErrClosed) {
		d.kernelSYNsFailed.Store(true) // shown in ctl and metrics: failed
		d.log.Warn("kernel SYN forwarding off: SYNs go through drlb", "err", err)
	}
	return false
}

// linkSYNTables converts the forwarder's tables for the port.
func linkSYNTables(ts []forwarder.StatelessSYNTable) []link.SYNTable {
	out := make([]link.SYNTable, len(ts))
	for i, t := range ts {
		out[i] = link.SYNTable(t) // the same fields
	}
	return out
}
