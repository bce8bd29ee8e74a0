package director

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/drlb/drlb/control"
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
