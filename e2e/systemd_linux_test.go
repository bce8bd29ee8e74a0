package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// TestSystemdNotify runs drlb as systemd's Type=notify runs it (the unit
// in dist/systemd): NOTIFY_SOCKET names a datagram socket, and drlb must
// say READY=1 once it forwards, RELOADING=1 then READY=1 around each
// SIGHUP (applied or refused), and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 2})
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := func(want string) string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q from drlb: %v", want, err)
		}
		msg := string(buf[:n])
		if !strings.Contains(msg, want) {
			t.Fatalf("drlb notified %q, want %q", msg, want)
		}
		return msg
	}

	cfg := filepath.Join(dir, "drlb.yaml")
	writeConfig(t, l, cfg, "rr", nil)
	p := startDirectorEnv(t, l, 2*len(l.RealServers), []string{"NOTIFY_SOCKET=" + sock}, "run", "-c", cfg, "-ctl", "")
	next("READY=1")
	if server, _ := get(t, l.HTTPClient(l.Client), "http://"+l.VIP.String()+"/", true); server == "" {
		t.Fatal("not forwarding after READY=1")
	}

	writeConfig(t, l, cfg, "rr", []int{2, 1})
	p.signal(syscall.SIGHUP)
	if msg := next("RELOADING=1"); !strings.Contains(msg, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", msg)
	}
	next("configuration reloaded")

	if err := os.WriteFile(cfg, []byte("services: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	next("RELOADING=1")
	if msg := next("READY=1"); !strings.Contains(msg, "reload refused") || !strings.Contains(msg, "drlb.yaml") {
		t.Errorf("a refused reload should say so, naming the file: %q", msg)
	}

	p.signal(syscall.SIGTERM)
	next("STOPPING=1")
}
