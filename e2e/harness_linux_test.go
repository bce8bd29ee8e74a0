package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
)

// drlbBinary is built once per test run by TestMain (empty when not root).
var drlbBinary string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			// What a killed earlier run left (its cleanups never ran):
			// namespaces and the processes in them.
			if err := testbed.CleanupStale(); err != nil {
				fmt.Fprintln(os.Stderr, "removing stale labs:", err)
			}
			dir, err := os.MkdirTemp("", "drlb-e2e-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			drlbBinary = filepath.Join(dir, "drlb")
			args := []string{"build", "-o", drlbBinary}
			if os.Getenv("DRLB_E2E_RACE") != "" {
				// A director built with the race detector: a data
				// race makes it exit 66, which fails the test that
				// stops it, with its output.
				args = append(args, "-race")
			}
			build := exec.Command("go", append(args, "github.com/drlb/drlb/cmd/drlb")...)
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building drlb:", err)
				return 1
			}
		}
		// Ctrl-C (of go test, of scripts/bench) or SIGTERM kills this
		// binary without its tests' cleanups: without this the labs'
		// namespaces stayed in /var/run/netns, with the directors,
		// keepalived, BIRD and trafgen started in them, until the next
		// run's CleanupStale.
		defer testbed.CloseAllOnSignal()()
		return m.Run()
	}()
	os.Exit(code)
}

// newLab builds a lab that is torn down when the test ends, however it ends.
func newLab(t *testing.T, opts testbed.Options) *testbed.Lab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := testbed.New(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := l.Close(); err != nil {
			t.Errorf("lab teardown: %v", err)
		}
	})
	if err := l.StartServices(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

// directorProc is a running `drlb run` in the lab's director namespace.
type directorProc struct {
	t    testing.TB
	cmd  *exec.Cmd
	logs *testutil.SyncBuffer
	done chan struct{}
	err  error
	// checked: stop has judged how drlb ended (once, not again in the
	// cleanup after a test's own stop).
	checked bool
}

// writeConfig writes a director config for the lab: TCP VIP:80 and
// [VIP6]:80, UDP VIP:7, with the given scheduler and weights (one per real
// server; nil = all 1). MACs are left out: drlb resolves them by ARP/NDP.
func writeConfig(t *testing.T, l *testbed.Lab, path, sched string, weights []int) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nservices:\n", l.Director.Iface)
	for _, svc := range []struct {
		vip   netip.Addr
		port  int
		proto string
	}{{l.VIP, testbed.HTTPPort, "tcp"}, {l.VIP, testbed.EchoPort, "udp"}, {l.VIP6, testbed.HTTPPort, "tcp"}} {
		fmt.Fprintf(&b, "  - vip: %q\n    port: %d\n    protocol: %s\n    scheduler: %s\n    realservers:\n", svc.vip, svc.port, svc.proto, sched)
		for i, rs := range l.RealServers {
			w := 1
			if weights != nil {
				w = weights[i]
			}
			addr := rs.IPv4
			if svc.vip.Is6() {
				addr = rs.IPv6
			}
			fmt.Fprintf(&b, "      - {address: %q, weight: %d}\n", addr, w)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDirector runs drlb with args inside the director's namespace (the
// child inherits the namespace of the thread that forks it) and waits
// until it has resolved every real server in both address families.
func startDirector(t *testing.T, l *testbed.Lab, args ...string) *directorProc {
	t.Helper()
	return startDirectorN(t, l, 2*len(l.RealServers), args...)
}

// startDirectorN starts drlb and waits for n resolved real servers.
func startDirectorN(t *testing.T, l *testbed.Lab, n int, args ...string) *directorProc {
	t.Helper()
	return startDirectorEnv(t, l, n, nil, args...)
}

// startDirectorEnv is startDirectorN with extra environment variables.
func startDirectorEnv(t *testing.T, l *testbed.Lab, n int, env []string, args ...string) *directorProc {
	t.Helper()
	return startDrlbOn(t, l, l.Director, n, env, args...)
}

// startDrlbOn runs drlb with args in h's namespace (with extra
// environment variables env, if any), stops it when tb ends, and waits
// until it has logged n resolved real servers. A `drlb run` without -ctl
// gets a control socket of the test's own (privateCtl).
func startDrlbOn(tb testing.TB, l *testbed.Lab, h *testbed.Host, n int, env []string, args ...string) *directorProc {
	tb.Helper()
	p := &directorProc{t: tb, logs: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(drlbBinary, privateCtl(tb, args)...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := l.Do(h, p.cmd.Start); err != nil {
		tb.Fatalf("starting drlb on %s: %v", h.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("drlb on %s output:\n%s", h.Name, p.logs.String())
		}
	})
	p.waitLog("real server resolved", n, 10*time.Second)
	return p
}

// privateCtl gives a `drlb run` command line a control socket in tb's
// temporary directory unless it names one: the default,
// /run/drlb/drlb.sock, belongs to a real director on this machine, and
// the test binaries go test runs at once would share it.
func privateCtl(tb testing.TB, args []string) []string {
	if len(args) == 0 || args[0] != "run" || slices.Contains(args, "-ctl") {
		return args
	}
	return append(slices.Clip(args), "-ctl", filepath.Join(tb.TempDir(), "drlb.sock"))
}

// ctlSnapshot reads the snapshot of the director behind sock (with its
// connection table if conns), as drlb ctl does.
func ctlSnapshot(t *testing.T, sock string, conns bool) control.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := control.Get(ctx, sock, conns)
	if err != nil {
		t.Fatalf("drlb ctl on %s: %v", sock, err)
	}
	return s
}

// waitLog waits until the output holds n lines containing s.
func (p *directorProc) waitLog(s string, n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(p.logs.String(), s) < n {
		select {
		case <-p.done:
			p.t.Fatalf("drlb exited (%v) before logging %q %d times:\n%s", p.err, s, n, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("drlb did not log %q %d times within %v:\n%s", s, n, timeout, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig to drlb.
func (p *directorProc) signal(sig os.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal drlb: %v", err)
	}
}

// stop ends drlb with SIGTERM and checks it stopped cleanly. A drlb that
// had already ended is checked too: only a SIGKILL (a test killing a
// director on purpose) is no failure; a crash, a race report's exit 66
// or an unclean exit on the test's own SIGTERM is.
func (p *directorProc) stop() {
	select {
	case <-p.done:
		if p.err != nil && !killedBySIGKILL(p.err) && !p.checked {
			p.t.Errorf("drlb ended with %v before the test stopped it, and not by a SIGKILL of the test's", p.err)
		}
		p.checked = true
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("drlb did not exit cleanly on SIGTERM: %v", p.err)
		}
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Error("drlb did not stop within 5s of SIGTERM; killed")
	}
	p.checked = true
}

// killedBySIGKILL reports whether err is the end of a process killed by
// SIGKILL.
func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// capture counts frames on one interface of one host.
type capture struct {
	conn *packet.Conn
	mu   sync.Mutex
	fn   func(frame []byte)
	done chan struct{}
}

// startCapture opens a raw socket on h's interface and calls fn with every
// frame (both directions) until the test ends.
func startCapture(t *testing.T, l *testbed.Lab, h *testbed.Host, iface string, fn func(frame []byte)) *capture {
	t.Helper()
	c := &capture{fn: fn, done: make(chan struct{})}
	err := l.Do(h, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		c.conn, err = packet.Listen(ifi, packet.Raw, 0x0003 /* ETH_P_ALL */, nil)
		return err
	})
	if err != nil {
		t.Fatalf("capture on %s %s: %v", h.Name, iface, err)
	}
	go func() {
		defer close(c.done)
		buf := make([]byte, 1<<16)
		for {
			n, _, err := c.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.fn(buf[:n])
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.close)
	return c
}

// settle lets frames in flight reach the capture, then returns with the
// capture's lock held until unlock is called.
func (c *capture) settle() (unlock func()) {
	time.Sleep(200 * time.Millisecond)
	c.mu.Lock()
	return c.mu.Unlock
}

func (c *capture) close() {
	c.conn.Close()
	<-c.done
}

// ipv4Addrs returns a frame's IPv4 source and destination, if it is IPv4.
func ipv4Addrs(f []byte) (src, dst netip.Addr, ok bool) {
	off := 14
	et := binary.BigEndian.Uint16(f[12:])
	if et == 0x8100 && len(f) >= 18 {
		et, off = binary.BigEndian.Uint16(f[16:]), 18
	}
	if et != 0x0800 || len(f) < off+20 {
		return src, dst, false
	}
	return netip.AddrFrom4([4]byte(f[off+12 : off+16])), netip.AddrFrom4([4]byte(f[off+16 : off+20])), true
}

// lanLink opens a netlink handle in h's namespace and finds h's LAN
// interface; the handle is closed when the test ends.
func lanLink(tb testing.TB, h *testbed.Host) (*netlink.Handle, netlink.Link) {
	tb.Helper()
	nh := testutil.NetlinkHandle(tb, h.NS)
	lk, err := nh.LinkByName(h.Iface)
	if err != nil {
		tb.Fatal(err)
	}
	return nh, lk
}
