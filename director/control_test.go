package director

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/link"
)

// TestServeControlFailsWhole: when the metrics port cannot be opened,
// serveControl fails and leaves no control socket answering for a
// director that did not start; stop shuts the socket down.
func TestServeControlFailsWhole(t *testing.T) {
	d := pipeDirector(t, configOf(service(vip, 80, "rr", resolvedReals()...)))
	log := slog.New(slog.DiscardHandler)
	sock := filepath.Join(t.TempDir(), "drlb.sock")
	// Port 99999 does not exist: the listen fails before binding anything.
	if _, err := serveControl(context.Background(), d, Options{ControlSocket: sock, MetricsAddr: "198.18.0.1:99999"}, log); err == nil {
		t.Fatal("serveControl with a metrics address it cannot listen on: no error")
	}
	if _, err := control.Get(context.Background(), sock, false); err == nil {
		t.Error("the control socket answers for a director that did not start")
	}
	stop, err := serveControl(context.Background(), d, Options{ControlSocket: sock}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := control.Get(context.Background(), sock, false); err != nil {
		t.Fatalf("control socket: %v", err)
	}
	stop()
	if _, err := control.Get(context.Background(), sock, false); err == nil {
		t.Error("the control socket answers after stop")
	}
}

// closedStatsPort is a pipe end whose Stats, once closed, returns what it
// counted with ErrClosed, as AF_PACKET and AF_XDP ports do.
type closedStatsPort struct {
	link.Port
	closed atomic.Bool
}

func (p *closedStatsPort) Close() error { p.closed.Store(true); return p.Port.Close() }

func (p *closedStatsPort) Stats() (link.Stats, error) {
	s := link.Stats{RxDropped: 7, TxFailed: 3}
	if p.closed.Load() {
		return s, link.ErrClosed
	}
	return s, nil
}

// TestSnapshotLinkDropsAfterClose: the link drop counters stay in the
// snapshot once the ports are closed (shutdown, while the control socket
// still answers): left out, they fell to 0 for a scrape, a counter going
// down.
func TestSnapshotLinkDropsAfterClose(t *testing.T) {
	dirPort, wire := link.Pipe()
	defer wire.Close()
	port := &closedStatsPort{Port: dirPort}
	d, err := New(configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC))), port, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	before := d.Snapshot(false).Link
	d.closePorts()
	after := d.Snapshot(false).Link
	if before["rx"] != 7 || after["rx"] != 7 || after["tx_failed"] != 3 {
		t.Fatalf("link drops before close %v, after %v: want rx 7 and tx_failed 3 in both", before, after)
	}
}
