package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// The BGP lab (testbed.StartBIRD): BIRD 2 in the router's namespace peers
// with every director (AS testbed.RouterASN against testbed.DirectorASN)
// and installs the VIP with one next hop per director that announces it
// (ECMP, L4 hash).
const bgpHold = 3 * time.Second

// startBIRD runs BIRD in the router's namespace with its own config,
// control socket and pid file under a temporary directory, peering
// passively with each director. It is stopped by its pid when the test
// ends, however it ends (and by the lab's Close).
func startBIRD(t *testing.T, l *testbed.Lab) *testbed.BIRD {
	t.Helper()
	testutil.NeedTool(t, "bird")
	b, err := l.StartBIRD(t.Context(), testbed.BIRDOptions{Dir: t.TempDir(), Hold: bgpHold})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("bird output:\n%s", b.Output())
		}
	})
	return b
}

// writeBGPConfig writes director h's config: the VIP by BGP, mh over the
// real servers, listed in a different order on each director (sh and mh
// do not depend on it).
func writeBGPConfig(t *testing.T, l *testbed.Lab, h *testbed.Host, path string, reverse bool) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nbgp:\n  asn: %d\n  hold_time: %s\n  peers:\n    - {address: %s, asn: %d}\n",
		h.Iface, testbed.DirectorASN, bgpHold, l.Router.IPv4, testbed.RouterASN)
	fmt.Fprintf(&b, "services:\n  - vip: %s\n    port: %d\n    scheduler: mh\n    realservers:\n", l.VIP, testbed.HTTPPort)
	for i := range l.RealServers {
		rs := l.RealServers[i]
		if reverse {
			rs = l.RealServers[len(l.RealServers)-1-i]
		}
		fmt.Fprintf(&b, "      - {address: %s}\n", rs.IPv4)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDirectorOn runs drlb in h's namespace and waits until it has
// resolved n real servers and announced the VIP.
func startDirectorOn(t *testing.T, l *testbed.Lab, h *testbed.Host, n int, args ...string) *directorProc {
	t.Helper()
	p := &directorProc{t: t, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(drlbBinary, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := l.Do(h, p.cmd.Start); err != nil {
		t.Fatalf("starting drlb on %s: %v", h.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("drlb on %s output:\n%s", h.Name, p.logs.String())
		}
	})
	p.waitLog("real server resolved", n, 10*time.Second)
	p.waitLog("bgp: announced", 1, 15*time.Second)
	return p
}

// nextHops returns the router's next hops for the VIP, from its kernel
// routing table (what BIRD installed).
func nextHops(t *testing.T, l *testbed.Lab) []netip.Addr {
	t.Helper()
	r, err := l.RouteTo(l.Router, l.VIP)
	if err != nil {
		t.Fatal(err)
	}
	return r.NextHops
}

// waitNextHops waits until the router has exactly want next hops for the
// VIP, and returns how long that took.
func waitNextHops(t *testing.T, l *testbed.Lab, want int, timeout time.Duration) time.Duration {
	t.Helper()
	r, took, err := l.WaitNextHops(t.Context(), l.Router, l.VIP, want, timeout, 10*time.Millisecond)
	if err != nil {
		t.Fatalf("router: %v (%s)", err, r)
	}
	return took
}

// clientLoad is the client's traffic: a new connection every 20 ms, and
// keep-alive connections each asking every 50 ms. Every failure is
// counted, with its reason.
type clientLoad struct {
	newOK, newFailed   atomic.Int64
	keptOK, keptBroken atomic.Int64
	maxLatency         atomic.Int64 // ns, of any request
	mu                 sync.Mutex
	errs               []string
	stop               chan struct{}
	wg                 sync.WaitGroup
}

func (c *clientLoad) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 20 {
		c.errs = append(c.errs, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func (c *clientLoad) latency(d time.Duration) {
	for {
		cur := c.maxLatency.Load()
		if int64(d) <= cur || c.maxLatency.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// Requests wait this long: longer than the hold time plus TCP's
// retransmissions, so a flow stalled on a killed director is counted as
// failed only if it never recovers.
const requestTimeout = 20 * time.Second

func startLoad(t *testing.T, l *testbed.Lab, keepAlive int) *clientLoad {
	t.Helper()
	c := &clientLoad{stop: make(chan struct{})}
	addr := netip.AddrPortFrom(l.VIP, testbed.HTTPPort).String()
	hc := l.HTTPClient(l.Client)
	hc.Timeout = requestTimeout
	// New connections: one every 20 ms, each in its own goroutine so a
	// stalled one does not delay the next (at most 5000 in all).
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer hc.CloseIdleConnections()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var reqs sync.WaitGroup
		defer reqs.Wait()
		for i := 0; i < 5000; i++ {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			reqs.Add(1)
			go func() {
				defer reqs.Done()
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
				req.Close = true
				start := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					c.newFailed.Add(1)
					c.fail("new connection: %v", err)
					return
				}
				resp.Body.Close()
				c.latency(time.Since(start))
				if resp.StatusCode != http.StatusOK {
					c.newFailed.Add(1)
					c.fail("new connection: status %d", resp.StatusCode)
					return
				}
				c.newOK.Add(1)
			}()
		}
	}()
	for k := 0; k < keepAlive; k++ {
		conn, err := l.Dial(context.Background(), l.Client, "tcp", addr)
		if err != nil {
			t.Fatalf("keep-alive connection %d: %v", k, err)
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer conn.Close()
			r := bufio.NewReader(conn)
			server := ""
			for i := 0; i < 5000; i++ {
				select {
				case <-c.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				start := time.Now()
				_ = conn.SetDeadline(start.Add(requestTimeout))
				if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
					c.keptBroken.Add(1)
					c.fail("keep-alive %d: write: %v", k, err)
					return
				}
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					c.keptBroken.Add(1)
					c.fail("keep-alive %d (%s, %s): read: %v", k, conn.LocalAddr(), server, err)
					return
				}
				resp.Body.Close()
				c.latency(time.Since(start))
				name := resp.Header.Get(testbed.ServerHeader)
				if server != "" && name != server {
					c.keptBroken.Add(1)
					c.fail("keep-alive %d: answered by %s, then by %s", k, server, name)
					return
				}
				server = name
				c.keptOK.Add(1)
			}
		}()
	}
	return c
}

func (c *clientLoad) finish() {
	close(c.stop)
	c.wg.Wait()
}

// forwarded returns how many packets the director behind sock forwarded.
func forwarded(t *testing.T, sock string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := control.Get(ctx, sock, false)
	if err != nil {
		t.Fatalf("drlb ctl on %s: %v", sock, err)
	}
	var n uint64
	for _, svc := range s.Services {
		n += svc.InPackets
	}
	return n
}

// TestBGPECMP is issue 13's lab: two drlb directors announce the VIP by
// BGP to BIRD, which spreads flows over both (ECMP, L4 hash). A client
// loop with new connections every 20 ms and keep-alive connections sees
// no failed request and no broken connection while one director is
// stopped (SIGTERM: it withdraws first), started again, and killed
// (SIGKILL: the router drops it after the hold time); a director whose
// link goes down is dropped within the hold time too.
func TestBGPECMP(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{Directors: 2, RoutedVIP: true, RealServers: 3})
	// StartBIRD hashes by ports too, so flows spread over the next hops
	// by port, not only by address (there is one client address).
	startBIRD(t, l)

	dir := t.TempDir()
	d1, d2 := l.Directors[0], l.Directors[1]
	cfg1, cfg2 := filepath.Join(dir, "d1.yaml"), filepath.Join(dir, "d2.yaml")
	writeBGPConfig(t, l, d1, cfg1, false)
	writeBGPConfig(t, l, d2, cfg2, true)
	sock1, sock2 := filepath.Join(dir, "d1.sock"), filepath.Join(dir, "d2.sock")
	n := len(l.RealServers)
	startDirectorOn(t, l, d1, n, "run", "-c", cfg1, "-ctl", sock1)
	p2 := startDirectorOn(t, l, d2, n, "run", "-c", cfg2, "-ctl", sock2)
	up := waitNextHops(t, l, 2, 20*time.Second)
	t.Logf("router: 2 next hops for %s (%v) %v after the second director announced", l.VIP, nextHops(t, l), up.Round(time.Millisecond))

	load := startLoad(t, l, 16)
	time.Sleep(2 * time.Second)
	f1, f2 := forwarded(t, sock1), forwarded(t, sock2)
	t.Logf("both directors carry traffic: director %d packets, director2 %d", f1, f2)
	if f1 == 0 || f2 == 0 {
		t.Errorf("a director carries nothing: %d and %d packets", f1, f2)
	}
	out, err := exec.Command(drlbBinary, "ctl", "-s", sock2, "bgp").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "established") || !strings.Contains(string(out), l.VIP.String()+" ") {
		t.Errorf("drlb ctl bgp: %v\n%s", err, out)
	}
	t.Logf("drlb ctl bgp on director2:\n%s", out)

	// Graceful stop: withdraw, forward on while the router moves the flows.
	stopAt := time.Now()
	p2.signal(syscall.SIGTERM)
	gone := waitNextHops(t, l, 1, 10*time.Second)
	select {
	case <-p2.done:
	case <-time.After(10 * time.Second):
		t.Fatal("director2 did not exit within 10s of SIGTERM")
	}
	t.Logf("SIGTERM: router down to 1 next hop after %v; director2 exited after %v", gone.Round(time.Millisecond), time.Since(stopAt).Round(time.Millisecond))
	time.Sleep(time.Second)

	// Rejoin.
	start := time.Now()
	p2 = startDirectorOn(t, l, d2, n, "run", "-c", cfg2, "-ctl", sock2)
	waitNextHops(t, l, 2, 20*time.Second)
	t.Logf("restart: router back to 2 next hops %v after starting director2", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	if forwarded(t, sock2) == 0 {
		t.Error("the restarted director2 carries nothing")
	}

	// SIGKILL: no withdrawal, no Cease; but the kernel still closes the
	// TCP session of a killed process, so the router drops it at once
	// (the hold time is for a machine or link that dies: below).
	if err := p2.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p2.done
	killed := waitNextHops(t, l, 1, 3*bgpHold)
	t.Logf("SIGKILL: router dropped director2 after %v (the kernel closed its BGP session; hold time %v)", killed.Round(time.Millisecond), bgpHold)
	if killed > bgpHold+time.Second {
		t.Errorf("SIGKILL: router took %v, more than the hold time %v", killed, bgpHold)
	}
	time.Sleep(time.Second)

	// Link down: the director cannot say anything either.
	start = time.Now()
	p2 = startDirectorOn(t, l, d2, n, "run", "-c", cfg2, "-ctl", sock2)
	waitNextHops(t, l, 2, 20*time.Second)
	t.Logf("second restart: 2 next hops %v after starting director2", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	swh, port := testutil.NetlinkHandle(t, l.Switch.NS), d2.BridgePort
	bp, err := swh.LinkByName(port)
	if err != nil {
		t.Fatal(err)
	}
	if err := swh.LinkSetDown(bp); err != nil {
		t.Fatal(err)
	}
	down := waitNextHops(t, l, 1, 3*bgpHold)
	t.Logf("link down: router dropped director2 after %v (hold time %v)", down.Round(time.Millisecond), bgpHold)
	if down > bgpHold+time.Second {
		t.Errorf("link down: router took %v, more than the hold time %v", down, bgpHold)
	}
	time.Sleep(time.Second)
	if err := swh.LinkSetUp(bp); err != nil {
		t.Fatal(err)
	}
	back := waitNextHops(t, l, 2, 30*time.Second)
	t.Logf("link up: router back to 2 next hops after %v", back.Round(time.Millisecond))
	time.Sleep(time.Second)

	load.finish()
	t.Logf("client: %d new connections ok, %d failed; keep-alive requests %d ok, %d broken connections; slowest request %v",
		load.newOK.Load(), load.newFailed.Load(), load.keptOK.Load(), load.keptBroken.Load(), time.Duration(load.maxLatency.Load()).Round(time.Millisecond))
	if load.newFailed.Load() != 0 || load.keptBroken.Load() != 0 {
		t.Errorf("client failures:\n%s", strings.Join(load.errs, "\n"))
	}
	if load.newOK.Load() < 500 || load.keptOK.Load() < 1000 {
		t.Errorf("too little traffic to judge: %d new, %d keep-alive", load.newOK.Load(), load.keptOK.Load())
	}
}
