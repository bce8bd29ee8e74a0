package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
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

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

// writeBGPConfig writes director h's config: the VIP by BGP (or, given,
// these VIPs: one service each), mh over the real servers, listed in a
// different order on each director (sh and mh do not depend on it).
func writeBGPConfig(t *testing.T, l *testbed.Lab, h *testbed.Host, path string, reverse bool, vips ...netip.Addr) {
	t.Helper()
	writeBGPConfigCheck(t, l, h, path, reverse, "", vips...)
}

// writeBGPConfigCheck is writeBGPConfig with check (a YAML flow mapping,
// "" for none) as every real server's health check.
func writeBGPConfigCheck(t *testing.T, l *testbed.Lab, h *testbed.Host, path string, reverse bool, check string, vips ...netip.Addr) {
	t.Helper()
	if len(vips) == 0 {
		vips = []netip.Addr{l.VIP}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nbgp:\n  asn: %d\n  hold_time: %s\n  peers:\n    - {address: %s, asn: %d}\n",
		h.Iface, testbed.DirectorASN, bgpHold, l.Router.IPv4, testbed.RouterASN)
	b.WriteString("services:\n")
	for _, vip := range vips {
		fmt.Fprintf(&b, "  - vip: %s\n    port: %d\n    scheduler: mh\n    realservers:\n", vip, testbed.HTTPPort)
		for i := range l.RealServers {
			rs := l.RealServers[i]
			if reverse {
				rs = l.RealServers[len(l.RealServers)-1-i]
			}
			if check != "" {
				fmt.Fprintf(&b, "      - {address: %s, check: %s}\n", rs.IPv4, check)
			} else {
				fmt.Fprintf(&b, "      - {address: %s}\n", rs.IPv4)
			}
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDirectorOn runs drlb in h's namespace and waits until it has
// resolved n real servers and announced the VIP.
func startDirectorOn(t *testing.T, l *testbed.Lab, h *testbed.Host, n int, args ...string) *directorProc {
	t.Helper()
	p := runDirectorOn(t, l, h, n, args...)
	p.waitLog("bgp: announced", 1, 15*time.Second)
	return p
}

// runDirectorOn runs drlb in h's namespace and waits until it has
// resolved n real servers.
func runDirectorOn(t *testing.T, l *testbed.Lab, h *testbed.Host, n int, args ...string) *directorProc {
	t.Helper()
	return startDrlbOn(t, l, h, n, nil, args...)
}

// nextHops returns the router's next hops for vip, from its kernel
// routing table (what BIRD installed).
func nextHops(t *testing.T, l *testbed.Lab, vip netip.Addr) []netip.Addr {
	t.Helper()
	r, err := l.RouteTo(l.Router, vip)
	if err != nil {
		t.Fatal(err)
	}
	return r.NextHops
}

// waitNextHops waits until the router has exactly want next hops for
// vip, and returns how long that took.
func waitNextHops(t *testing.T, l *testbed.Lab, vip netip.Addr, want int, timeout time.Duration) time.Duration {
	t.Helper()
	r, took, err := l.WaitNextHops(t.Context(), l.Router, vip, want, timeout, 10*time.Millisecond)
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
	stopOnce           sync.Once
	wg                 sync.WaitGroup

	addr string // the VIP and port
	kept int    // keep-alive connections opened (keepAlive)

	// lastDone is when the last request succeeded (unix ns); maxGap the
	// longest time between two successes since resetGap (ns): how long
	// the client saw no answer at all.
	lastDone, maxGap atomic.Int64
}

func (c *clientLoad) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 20 {
		c.errs = append(c.errs, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

// resetGap starts measuring the longest gap afresh.
func (c *clientLoad) resetGap() { c.maxGap.Store(0) }

// gap is the longest time without a successful answer since resetGap.
func (c *clientLoad) gap() time.Duration { return time.Duration(c.maxGap.Load()) }

func (c *clientLoad) latency(d time.Duration) {
	now := time.Now().UnixNano()
	if prev := c.lastDone.Swap(now); prev != 0 {
		for g := c.maxGap.Load(); now-prev > g && !c.maxGap.CompareAndSwap(g, now-prev); g = c.maxGap.Load() {
		}
	}
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
	return startLoadTo(t, l, l.VIP, keepAlive)
}

// startLoadTo is startLoad through vip (l.VIP6 for IPv6).
func startLoadTo(t *testing.T, l *testbed.Lab, vip netip.Addr, keepAlive int) *clientLoad {
	t.Helper()
	addr := netip.AddrPortFrom(vip, testbed.HTTPPort).String()
	c := &clientLoad{stop: make(chan struct{}), addr: addr}
	t.Cleanup(c.finish) // a test that fails before finish stops its loops too
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
	for range keepAlive {
		c.keepAlive(t, l)
	}
	return c
}

// keepAlive opens one more keep-alive connection that asks every 50 ms
// until finish (numbered in the order they were opened).
func (c *clientLoad) keepAlive(t *testing.T, l *testbed.Lab) {
	t.Helper()
	addr, k := c.addr, c.kept
	c.kept++
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

func (c *clientLoad) finish() {
	c.stopOnce.Do(func() { close(c.stop) })
	c.wg.Wait()
}

// forwarded returns how many packets the director behind sock forwarded.
func forwarded(t *testing.T, sock string) uint64 {
	t.Helper()
	var n uint64
	for _, svc := range ctlSnapshot(t, sock, false).Services {
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
	up := waitNextHops(t, l, l.VIP, 2, 20*time.Second)
	t.Logf("router: 2 next hops for %s (%v) %v after the second director announced", l.VIP, nextHops(t, l, l.VIP), up.Round(time.Millisecond))

	// drlb doctor passes on a director of this lab: the router answers on
	// the LAN, the VIP is off it.
	var doc []byte
	err := l.Do(d1, func() error {
		var err error
		doc, err = exec.Command(drlbBinary, "doctor", "-role", "director", "-c", cfg1).CombinedOutput()
		return err
	})
	for _, check := range []string{"BGP peer " + l.Router.IPv4.String() + " reachable", "BGP peer " + l.Router.IPv4.String() + " on the LAN of " + d1.Iface,
		"VIP " + l.VIP.String() + " off the LAN (routed by BGP)"} {
		if !passed(string(doc), check) {
			err = fmt.Errorf("no PASS for %q", check)
		}
	}
	if err != nil {
		t.Errorf("drlb doctor -role director on director1: %v\n%s", err, doc)
	}
	t.Logf("drlb doctor -role director on director1:\n%s", doc)

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
	gone := waitNextHops(t, l, l.VIP, 1, 10*time.Second)
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
	waitNextHops(t, l, l.VIP, 2, 20*time.Second)
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
	killed := waitNextHops(t, l, l.VIP, 1, 3*bgpHold)
	t.Logf("SIGKILL: router dropped director2 after %v (the kernel closed its BGP session; hold time %v)", killed.Round(time.Millisecond), bgpHold)
	if killed > bgpHold+time.Second {
		t.Errorf("SIGKILL: router took %v, more than the hold time %v", killed, bgpHold)
	}
	time.Sleep(time.Second)

	// Link down: the director cannot say anything either.
	start = time.Now()
	p2 = startDirectorOn(t, l, d2, n, "run", "-c", cfg2, "-ctl", sock2)
	waitNextHops(t, l, l.VIP, 2, 20*time.Second)
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
	down := waitNextHops(t, l, l.VIP, 1, 3*bgpHold)
	t.Logf("link down: router dropped director2 after %v (hold time %v)", down.Round(time.Millisecond), bgpHold)
	if down > bgpHold+time.Second {
		t.Errorf("link down: router took %v, more than the hold time %v", down, bgpHold)
	}
	time.Sleep(time.Second)
	if err := swh.LinkSetUp(bp); err != nil {
		t.Fatal(err)
	}
	back := waitNextHops(t, l, l.VIP, 2, 30*time.Second)
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

// passed reports whether drlb doctor's table has check with status PASS.
func passed(table, check string) bool {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "PASS" && strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(line, "PASS")), check+"  ") {
			return true
		}
	}
	return false
}

// ctl runs drlb ctl against the director behind sock and returns its
// output; a failure fails the test.
func ctl(t *testing.T, sock string, args ...string) string {
	t.Helper()
	out, err := exec.Command(drlbBinary, append([]string{"ctl", "-s", sock}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("drlb ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestBGPDrainAndConfigDrop: the rest of issue 13's withdrawals, in the
// lab of TestBGPECMP. `drlb ctl bgp drain` makes the router drop the
// drained director's next hop while the client loop goes on through the
// other with no failed request and no broken connection, and `undrain`
// brings it back; a SIGHUP with a config that drops the VIP's service
// withdraws the VIP (and announces the config's new one), and a SIGHUP
// that adds it back announces it again. drlb ctl -L -n shows it all.
func TestBGPDrainAndConfigDrop(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{Directors: 2, RoutedVIP: true, RealServers: 3})
	startBIRD(t, l) // also hashes the router's multipath by ports
	dir := t.TempDir()
	d1, d2 := l.Directors[0], l.Directors[1]
	cfg1, cfg2 := filepath.Join(dir, "d1.yaml"), filepath.Join(dir, "d2.yaml")
	writeBGPConfig(t, l, d1, cfg1, false)
	writeBGPConfig(t, l, d2, cfg2, true)
	sock1, sock2 := filepath.Join(dir, "d1.sock"), filepath.Join(dir, "d2.sock")
	n := len(l.RealServers)
	p1 := startDirectorOn(t, l, d1, n, "run", "-c", cfg1, "-ctl", sock1)
	startDirectorOn(t, l, d2, n, "run", "-c", cfg2, "-ctl", sock2)
	waitNextHops(t, l, l.VIP, 2, 20*time.Second)
	only := func(vip, want netip.Addr) {
		t.Helper()
		if got := nextHops(t, l, vip); len(got) != 1 || got[0] != want {
			t.Errorf("router: next hops for %s = %v, want only %s", vip, got, want)
		}
	}

	// drlb ctl -L -n: the ipvsadm table, then the BGP side.
	list := ctl(t, sock2, "-L", "-n")
	for _, want := range []string{
		"\n\nBGP AS 65001 router-id " + d2.IPv4.String() + "\n",
		fmt.Sprintf("\n  peer %s AS %d ESTABLISHED up ", l.Router.IPv4, testbed.RouterASN),
		fmt.Sprintf("\n  announced %s/32 via %s (%d usable real servers)\n", l.VIP, d2.IPv4, n),
	} {
		if !strings.Contains(list, want) {
			t.Errorf("drlb ctl -L -n lacks %q:\n%s", want, list)
		}
	}
	t.Logf("drlb ctl -L -n on director2:\n%s", list)

	// Drain director2 under load: the router moves its flows to
	// director1, which picks the same real servers (mh).
	load := startLoad(t, l, 16)
	time.Sleep(2 * time.Second)
	start := time.Now()
	ctl(t, sock2, "bgp", "drain")
	waitNextHops(t, l, l.VIP, 1, 10*time.Second)
	t.Logf("drain: router down to director1 alone %v after drlb ctl bgp drain was run", time.Since(start).Round(time.Millisecond))
	only(l.VIP, d1.IPv4)
	if list := ctl(t, sock2, "-L", "-n"); !strings.Contains(list, " drained (everything withdrawn: drlb ctl bgp undrain)\n") ||
		!strings.Contains(list, "\n  not announced "+l.VIP.String()+"/32 (drained; ") {
		t.Errorf("drlb ctl -L -n of a drained director:\n%s", list)
	}
	time.Sleep(time.Second) // what was in flight towards director2 lands
	a1, a2 := forwarded(t, sock1), forwarded(t, sock2)
	time.Sleep(2 * time.Second)
	b1, b2 := forwarded(t, sock1), forwarded(t, sock2)
	t.Logf("drained: director1 forwarded %d packets in 2s, director2 %d", b1-a1, b2-a2)
	if b1 == a1 || b2 != a2 {
		t.Errorf("drained: director1 forwarded %d packets in 2s, director2 %d; want traffic through director1 alone", b1-a1, b2-a2)
	}
	start = time.Now()
	ctl(t, sock2, "bgp", "undrain")
	waitNextHops(t, l, l.VIP, 2, 10*time.Second)
	t.Logf("undrain: router back to 2 next hops %v after drlb ctl bgp undrain was run", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	if c2 := forwarded(t, sock2); c2 == b2 {
		t.Error("undrained director2 carries nothing")
	}
	load.finish()
	t.Logf("client: %d new connections ok, %d failed; keep-alive requests %d ok, %d broken connections; slowest request %v",
		load.newOK.Load(), load.newFailed.Load(), load.keptOK.Load(), load.keptBroken.Load(), time.Duration(load.maxLatency.Load()).Round(time.Millisecond))
	if load.newFailed.Load() != 0 || load.keptBroken.Load() != 0 {
		t.Errorf("client failures:\n%s", strings.Join(load.errs, "\n"))
	}
	if load.newOK.Load() < 250 || load.keptOK.Load() < 1000 {
		t.Errorf("too little traffic to judge: %d new, %d keep-alive", load.newOK.Load(), load.keptOK.Load())
	}

	// A config that drops the VIP's service (and serves another VIP):
	// SIGHUP withdraws the one and announces the other.
	other := netip.MustParseAddr("198.18.2.101")
	writeBGPConfig(t, l, d1, cfg1, false, other)
	start = time.Now()
	p1.signal(syscall.SIGHUP)
	gone := waitNextHops(t, l, l.VIP, 1, 10*time.Second)
	t.Logf("SIGHUP without the VIP: router dropped director1 for %s after %v", l.VIP, gone.Round(time.Millisecond))
	only(l.VIP, d2.IPv4)
	waitNextHops(t, l, other, 1, 10*time.Second)
	only(other, d1.IPv4)
	t.Logf("SIGHUP: router has director1 for %s after %v", other, time.Since(start).Round(time.Millisecond))
	if list := ctl(t, sock1, "-L", "-n"); strings.Contains(list, l.VIP.String()) || !strings.Contains(list, "\n  announced "+other.String()+"/32 via "+d1.IPv4.String()) {
		t.Errorf("drlb ctl -L -n after the VIP was dropped:\n%s", list)
	}

	// And back: the VIP announced again, the other withdrawn.
	writeBGPConfig(t, l, d1, cfg1, false)
	p1.signal(syscall.SIGHUP)
	again := waitNextHops(t, l, l.VIP, 2, 10*time.Second)
	waitNextHops(t, l, other, 0, 10*time.Second)
	t.Logf("SIGHUP with the VIP again: router back to 2 next hops for %s after %v", l.VIP, again.Round(time.Millisecond))
	if got := nextHops(t, l, l.VIP); len(got) != 2 {
		t.Errorf("router: next hops for %s = %v, want both directors", l.VIP, got)
	}
}

// TestBGPWaitsForHealthChecks: a director with health checks announces
// its VIP only once they have passed, not from the start: servers are
// up from the start (as keepalived's), but a director whose service is
// dead would otherwise draw the router's share of new flows until its
// checks failed retries times. With every check failing the router never
// hears of the VIP; with checks that pass it does.
func TestBGPWaitsForHealthChecks(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{Directors: 1, RoutedVIP: true, RealServers: 3})
	startBIRD(t, l)
	d := l.Directors[0]
	path := filepath.Join(t.TempDir(), "d.yaml")
	// Port 1: nothing listens; 10 failures 1 s apart take the servers
	// down, so for 10 s they are up, their checks not passed.
	writeBGPConfigCheck(t, l, d, path, false, "{type: tcp, port: 1, interval: 1s, timeout: 500ms, retries: 10}")
	p := runDirectorOn(t, l, d, len(l.RealServers), "run", "-c", path, "-ctl", filepath.Join(t.TempDir(), "d.sock"))
	p.waitLog("state=established", 1, 15*time.Second)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got := nextHops(t, l, l.VIP); len(got) != 0 {
			t.Fatalf("router: next hops %v for %s while every check fails, want none", got, l.VIP)
		}
	}
	t.Logf("checks failing: the router heard nothing of %s in 5 s of session", l.VIP)
	writeBGPConfigCheck(t, l, d, path, false, fmt.Sprintf("{type: tcp, port: %d, interval: 1s, timeout: 500ms, retries: 3}", testbed.HTTPPort))
	start := time.Now()
	p.signal(syscall.SIGHUP)
	waitNextHops(t, l, l.VIP, 1, 15*time.Second)
	t.Logf("checks passing after SIGHUP: announced after %v", time.Since(start).Round(time.Millisecond))
}

// TestBGPIPv6NextHopLate: an IPv6 VIP announced over the IPv4 session
// (MP-BGP) with the director's global IPv6 address as next hop, where
// that address came only after drlb started (at boot, duplicate address
// detection can keep it tentative for a second or more). Until then
// `drlb ctl bgp` says why the VIP is not announced; once the address is
// there the router learns the route within a few seconds, and a client
// reaches the service through it.
func TestBGPIPv6NextHopLate(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{Directors: 1, RoutedVIP: true, RealServers: 2})
	bird := startBIRD(t, l)
	d := l.Directors[0]
	nh := testutil.NetlinkHandle(t, d.NS)
	lk, err := nh.LinkByName(d.Iface)
	if err != nil {
		t.Fatal(err)
	}
	addr := &netlink.Addr{IPNet: netlink.NewIPNet(d.IPv6.AsSlice()), Flags: unix.IFA_F_NODAD}
	addr.IPNet.Mask = net.CIDRMask(64, 128)
	if err := nh.AddrDel(lk, addr); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg, sock := filepath.Join(dir, "d.yaml"), filepath.Join(dir, "d.sock")
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nbgp:\n  asn: %d\n  hold_time: %s\n  peers:\n    - {address: %s, asn: %d}\n",
		d.Iface, testbed.DirectorASN, bgpHold, l.Router.IPv4, testbed.RouterASN)
	fmt.Fprintf(&b, "services:\n  - vip: %s\n    port: %d\n    scheduler: mh\n    realservers:\n", l.VIP6, testbed.HTTPPort)
	for _, rs := range l.RealServers {
		fmt.Fprintf(&b, "      - {address: %s}\n", rs.IPv6)
	}
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runDirectorOn(t, l, d, len(l.RealServers), "run", "-c", cfg, "-ctl", sock)
	const why = "no global address of this family"
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := exec.Command(drlbBinary, "ctl", "-s", sock, "bgp").CombinedOutput()
		if strings.Contains(string(out), "established") && strings.Contains(string(out), why) {
			t.Logf("drlb ctl bgp before the address:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drlb ctl bgp never said %q with the session established:\n%s", why, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := nextHops(t, l, l.VIP6); len(r) != 0 {
		t.Fatalf("the router has next hops %v for %s before the director has an IPv6 address", r, l.VIP6)
	}

	if err := nh.AddrAdd(lk, addr); err != nil {
		t.Fatal(err)
	}
	_, took, err := l.WaitNextHops(t.Context(), l.Router, l.VIP6, 1, 15*time.Second, 10*time.Millisecond)
	if err != nil {
		out, _ := exec.Command("birdc", "-s", bird.Socket, "show", "route", "all").CombinedOutput()
		proto, _ := exec.Command("birdc", "-s", bird.Socket, "show", "protocols", "all", "director1").CombinedOutput()
		t.Fatalf("router: %v\nbirdc show route all:\n%s\nbirdc show protocols all director1:\n%s", err, out, proto)
	}
	if r := nextHops(t, l, l.VIP6); len(r) != 1 || r[0] != d.IPv6 {
		t.Fatalf("router's next hops for %s: %v, want %s", l.VIP6, r, d.IPv6)
	}
	t.Logf("address added: the router routes %s via %s %v later (the watch looks every %s)", l.VIP6, d.IPv6, took.Round(time.Millisecond), time.Second)
	p.waitLog("bgp: next hop found on the interface", 1, time.Second)

	hc := l.HTTPClient(l.Client)
	hc.Timeout = requestTimeout
	defer hc.CloseIdleConnections()
	url := "http://" + netip.AddrPortFrom(l.VIP6, testbed.HTTPPort).String() + "/"
	ok := 0
	for range 10 {
		resp, err := hc.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
	}
	t.Logf("client through the IPv6 route: %d of 10 requests answered", ok)
	if ok != 10 {
		t.Errorf("%d of 10 requests through %s answered", ok, l.VIP6)
	}
}

// TestBGPWrongPeerASNLogged: a director whose bgp.peers names another ASN
// than BIRD's own never gets its session up, and says so at warning level
// with what to check, where it said nothing (only GoBGP's debug log knew)
// and the VIP was simply never announced.
func TestBGPWrongPeerASNLogged(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{Directors: 1, RoutedVIP: true, RealServers: 1})
	startBIRD(t, l)
	d := l.Directors[0]
	cfg := filepath.Join(t.TempDir(), "d1.yaml")
	writeBGPConfig(t, l, d, cfg, false)
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(text), fmt.Sprintf("asn: %d}", testbed.RouterASN), fmt.Sprintf("asn: %d}", testbed.RouterASN+7), 1)
	if wrong == string(text) {
		t.Fatal("no peer ASN to change in the config")
	}
	if err := os.WriteFile(cfg, []byte(wrong), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runDirectorOn(t, l, d, 1, "run", "-c", cfg)
	p.waitLog("bgp: session not established", 1, 20*time.Second)
	for _, want := range []string{"NOTIFICATION sent", "bgp.peers[].asn", fmt.Sprintf("asn=%d", testbed.RouterASN+7)} {
		if !strings.Contains(p.logs.String(), want) {
			t.Errorf("the warning lacks %q:\n%s", want, p.logs.String())
		}
	}
	if got := nextHops(t, l, l.VIP); len(got) != 0 {
		t.Errorf("router: next hops for the VIP %v, want none", got)
	}
}
