package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
)

// The client side of the live-change tests (TestReloadLive through
// SIGHUP, TestCtlLive through drlb ctl): keep-alive connections and a
// stream of new ones run while the director's table changes, and every
// request is counted.

// askOnce makes one HTTP/1.1 request on c and returns who answered. With
// close, the request asks the server to close the connection after it.
func askOnce(c net.Conn, br *bufio.Reader, host string, close bool) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	conn := "keep-alive"
	if close {
		conn = "close"
	}
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\n\r\n", host, conn); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	server := resp.Header.Get(testbed.ServerHeader)
	switch {
	case err != nil:
		return "", err
	case resp.StatusCode != http.StatusOK || string(body) != server+"\n":
		return "", fmt.Errorf("status %d, body %q from %q", resp.StatusCode, body, server)
	}
	return server, nil
}

// askNew opens a connection from the lab's client to v:80, makes one
// request on it (Connection: close) and returns who answered. A deadline
// on ctx bounds the whole exchange, not only the dial.
func askNew(ctx context.Context, l *testbed.Lab, v netip.Addr) (string, error) {
	return askNewFrom(ctx, l, netip.Addr{}, v)
}

// askNewFrom is askNew from the client's address from (one of its
// addresses; the zero Addr: the one the kernel picks).
func askNewFrom(ctx context.Context, l *testbed.Lab, from, v netip.Addr) (string, error) {
	var c net.Conn
	err := l.Do(l.Client, func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		if from.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
		}
		var err error
		c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(v, testbed.HTTPPort).String())
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, ok := ctx.Deadline(); ok {
		defer context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })()
	}
	return askOnce(c, bufio.NewReader(c), v.String(), true)
}

// keepAlive is one long-lived client connection making a request every
// interval, and what became of it.
type keepAlive struct {
	server   string        // who answered its first request
	requests int           // answered requests
	err      error         // how it ended, nil if it is still fine
	failedIn time.Duration // from the failing request to its error
	failedAt time.Time
}

// The client loop's pace.
const (
	newConnEvery   = 20 * time.Millisecond // one new connection
	keepAliveEvery = 50 * time.Millisecond // one request on each keep-alive connection
)

// clientLoop is the traffic: keep-alive connections to the lab's VIP,
// each making a request every keepAliveEvery on the server that answered
// its first, and a new connection every newConnEvery to each target in
// turn, one request each. Every request on a new connection is counted by
// the phase it started in and who answered it. The loop is bounded in
// count (run's arguments) and in time (5 s per request, and stop, which
// the test's cleanup calls too).
type clientLoop struct {
	t   *testing.T
	l   *testbed.Lab
	ctx context.Context

	kas     []*keepAlive
	conns   []net.Conn
	readers []*bufio.Reader

	stopCh   chan struct{}
	stopOnce sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu       sync.Mutex
	phase    string
	targets  []netip.Addr
	started  map[netip.Addr]int // new connections started, per target
	newConns map[string]int     // "phase target server" -> new connections answered
	// resetByDelete counts new connections reset in phaseDeleting.
	resetByDelete int
	failures      []string
}

// newClientLoop dials n keep-alive connections from the lab's client to
// VIP:80 and makes one request on each; the loop does not run yet (see
// run), so the test can check where they went first. The connections
// close when the test ends.
func newClientLoop(t *testing.T, l *testbed.Lab, n int) *clientLoop {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &clientLoop{
		t: t, l: l, ctx: ctx, cancel: cancel,
		stopCh:   make(chan struct{}),
		phase:    "0",
		targets:  []netip.Addr{l.VIP},
		started:  map[netip.Addr]int{},
		newConns: map[string]int{},
	}
	t.Cleanup(c.stop)
	web := netip.AddrPortFrom(l.VIP, testbed.HTTPPort).String()
	for i := 0; i < n; i++ {
		conn, err := l.Dial(ctx, l.Client, "tcp", web)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		br := bufio.NewReader(conn)
		server, err := askOnce(conn, br, l.VIP.String(), false)
		if err != nil {
			t.Fatalf("keep-alive %d: %v", i, err)
		}
		c.kas = append(c.kas, &keepAlive{server: server, requests: 1})
		c.conns, c.readers = append(c.conns, conn), append(c.readers, br)
	}
	return c
}

// on counts the keep-alive connections by the server that answered them.
func (c *clientLoop) on() map[string]int {
	on := map[string]int{}
	for _, ka := range c.kas {
		on[ka.server]++
	}
	return on
}

// run starts the traffic: at most maxKeep requests on each keep-alive
// connection and maxNew new connections.
func (c *clientLoop) run(maxNew, maxKeep int) {
	for i, ka := range c.kas {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for n := 0; n < maxKeep; n++ {
				select {
				case <-c.stopCh:
					return
				case <-time.After(keepAliveEvery):
				}
				start := time.Now()
				server, err := askOnce(c.conns[i], c.readers[i], c.l.VIP.String(), false)
				c.mu.Lock()
				switch {
				case err != nil:
					ka.err, ka.failedIn, ka.failedAt = err, time.Since(start), time.Now()
				case server != ka.server:
					ka.err = fmt.Errorf("answered by %s, was %s", server, ka.server)
				default:
					ka.requests++
				}
				c.mu.Unlock()
				if err != nil || server != ka.server {
					return
				}
			}
		}()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for n := 0; n < maxNew; n++ {
			select {
			case <-c.stopCh:
				return
			case <-time.After(newConnEvery):
			}
			c.mu.Lock()
			to, ph := c.targets[n%len(c.targets)], c.phase // as the request starts
			c.started[to]++
			c.mu.Unlock()
			server, err := askNew(c.ctx, c.l, to)
			c.mu.Lock()
			switch {
			case err != nil && ph == phaseDeleting && errors.Is(err, syscall.ECONNRESET):
				// Scheduled to the server being deleted just before
				// the delete: reset, as IPVS's expire_nodest_conn does.
				c.resetByDelete++
			case err != nil:
				c.failures = append(c.failures, fmt.Sprintf("phase %s: new connection to %s: %v", ph, to, err))
			default:
				c.newConns[ph+" "+to.String()+" "+server]++
			}
			c.mu.Unlock()
		}
	}()
}

// stop ends the traffic and waits for it (it may be called again). From
// then on the loop's fields are read without its lock.
func (c *clientLoop) stop() {
	c.stopOnce.Do(func() {
		close(c.stopCh)
		c.wg.Wait()
		c.cancel()
	})
}

// Requests are counted by the phase they started in. A phase begins once
// the director applied its change; requests started while a change is on
// its way count in a transition phase, "t", which no check reads.
func (c *clientLoop) setPhase(next string) {
	c.mu.Lock()
	c.phase = next
	c.mu.Unlock()
}

// phaseDeleting is the transition phase of a change that deletes a real
// server (deleting): a new connection that started just before it may
// have been scheduled to that server, and is reset when it goes, as with
// IPVS; such resets are counted (resetByDelete), not failures. Any other
// failure in it still is.
const phaseDeleting = "t-delete"

// maxResetByDelete bounds the resets phaseDeleting tolerates: a new
// connection starts every newConnEvery, and the delete itself takes a few
// milliseconds to apply.
const maxResetByDelete = 3

// deleting enters phaseDeleting, before a change that deletes a server.
func (c *clientLoop) deleting() { c.setPhase(phaseDeleting) }

// settle runs phase next for 1.5 s, then enters the transition phase.
func (c *clientLoop) settle(next string) {
	c.setPhase(next)
	time.Sleep(1500 * time.Millisecond)
	c.setPhase("t")
}

// setTargets sets the addresses new connections go to, in turn.
func (c *clientLoop) setTargets(to ...netip.Addr) {
	c.mu.Lock()
	c.targets = to
	c.mu.Unlock()
}

// startedTo is how many new connections to v the loop has started.
func (c *clientLoop) startedTo(v netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started[v]
}

// servedCheck says whether h (nil: any real server) answered some or none
// of the new connections to v that started in a phase.
type servedCheck struct {
	what  string
	phase string
	v     netip.Addr
	h     *testbed.Host
	some  bool
}

// checkNew checks the new connections, once the loop stopped: none
// failed, at least min were answered, and each check holds.
func (c *clientLoop) checkNew(min int, checks []servedCheck) {
	c.t.Helper()
	for _, f := range c.failures {
		c.t.Error(f)
	}
	// Only the few connections started as the delete lands can have
	// been scheduled to the server it removes; more resets would be a
	// delete that took connections to the servers that stay.
	if c.resetByDelete > maxResetByDelete {
		c.t.Errorf("%d new connections reset while a server was deleted, want at most %d", c.resetByDelete, maxResetByDelete)
	}
	if total := c.answeredNew(); total < min {
		c.t.Errorf("only %d new connections answered: %v", total, c.newConns)
	}
	for _, s := range checks {
		n := 0
		for k, m := range c.newConns {
			if s.h != nil && k == s.phase+" "+s.v.String()+" "+s.h.Name || s.h == nil && strings.HasPrefix(k, s.phase+" "+s.v.String()+" ") {
				n += m
			}
		}
		if (n > 0) != s.some {
			c.t.Errorf("%s: %d new connections (want some: %v): %v", s.what, n, s.some, c.newConns)
		}
	}
}

// checkKeepAlives checks the keep-alive connections, once the loop
// stopped: those on stay never broke; those on gone, a real server
// removed at goneAt, ended with a reset at their first request after it,
// within a second, having gone on until then (at least 50 requests each).
func (c *clientLoop) checkKeepAlives(stay, gone *testbed.Host, goneAt time.Time) {
	c.t.Helper()
	for i, ka := range c.kas {
		switch ka.server {
		case stay.Name:
			if ka.err != nil || ka.requests < 50 {
				c.t.Errorf("keep-alive %d on %s: %d requests, ended by %v; want it unbroken", i, stay.Name, ka.requests, ka.err)
			}
		case gone.Name:
			switch {
			case ka.err == nil:
				c.t.Errorf("keep-alive %d on the deleted %s still answered (%d requests)", i, gone.Name, ka.requests)
			case !errors.Is(ka.err, syscall.ECONNRESET):
				c.t.Errorf("keep-alive %d on %s ended by %v, want a reset", i, gone.Name, ka.err)
			case ka.failedIn > time.Second || ka.failedAt.Before(goneAt):
				c.t.Errorf("keep-alive %d on %s failed %v after its request, at %v (deleted at %v): want fast, after the delete",
					i, gone.Name, ka.failedIn, ka.failedAt, goneAt)
			case ka.requests < 50:
				c.t.Errorf("keep-alive %d on %s made only %d requests before the delete (it should have gone on until then)", i, gone.Name, ka.requests)
			}
		default:
			c.t.Errorf("keep-alive %d on %s: neither %s nor %s", i, ka.server, stay.Name, gone.Name)
		}
	}
}

// answeredNew is how many new connections were answered.
func (c *clientLoop) answeredNew() int {
	total := 0
	for _, n := range c.newConns {
		total += n
	}
	return total
}

// report logs what the loop measured, once it stopped, and returns the
// number of requests made and of those that failed: requests on new
// connections that failed, and keep-alive connections that broke other
// than on gone (the deleted server, whose connections end by design).
func (c *clientLoop) report(gone *testbed.Host) (requests, failed int) {
	c.t.Helper()
	keep, broken, expected := 0, 0, 0
	for _, ka := range c.kas {
		keep += ka.requests
		switch {
		case ka.err == nil:
		case ka.server == gone.Name:
			expected++
		default:
			broken++
		}
	}
	answered := c.answeredNew()
	requests = answered + len(c.failures) + keep + broken + expected
	failed = len(c.failures) + broken
	keys := make([]string, 0, len(c.newConns))
	for k := range c.newConns {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " [%s]=%d", k, c.newConns[k])
	}
	c.t.Logf("new connections by phase, target and server:%s", b.String())
	for i, ka := range c.kas {
		c.t.Logf("keep-alive %d on %s: %d requests, ended by %v (%v after its request)", i, ka.server, ka.requests, ka.err, ka.failedIn)
	}
	c.t.Logf("%d requests, %d failed: %d new connections answered, %d failed, %d reset while a server was deleted; %d requests on %d keep-alive connections, %d broken, %d reset as their server %s was deleted",
		requests, failed, answered, len(c.failures), c.resetByDelete, keep+broken+expected, len(c.kas), broken, expected, gone.Name)
	return requests, failed
}

// serveSecondVIP makes h a real server of v too, as any DR real server
// is: v on its lo, and h's HTTP service listening on v:80, until the test
// ends.
func serveSecondVIP(t *testing.T, l *testbed.Lab, h *testbed.Host, v netip.Addr) {
	t.Helper()
	nh := testutil.NetlinkHandle(t, h.NS)
	lo, err := nh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr(v.String() + "/32")
	if err := nh.AddrAdd(lo, addr); err != nil {
		t.Fatal(err)
	}
	ln, err := l.Listen(context.Background(), h, "tcp", netip.AddrPortFrom(v, testbed.HTTPPort).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: testbed.NewHandler(h.Name), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// weighted is a real server and its weight in a config file.
type weighted struct {
	h *testbed.Host
	w int
}

// yamlService is one service of a drlb.yaml: v:80 with the scheduler and
// real servers given, one line per key (so a test knows each line).
func yamlService(v netip.Addr, sched string, reals ...weighted) string {
	s := fmt.Sprintf("  - vip: %s\n    port: %d\n    scheduler: %s\n    realservers:\n", v, testbed.HTTPPort, sched)
	for _, r := range reals {
		s += fmt.Sprintf("      - address: %s\n        weight: %d\n", r.h.IPv4, r.w)
	}
	return s
}

// writeYAML writes a drlb.yaml for the lab's director with the services
// given (yamlService). With two real servers in the first service, its
// second weight is at line 10, column 17.
func writeYAML(t *testing.T, l *testbed.Lab, path string, services ...string) {
	t.Helper()
	body := fmt.Sprintf("interface: %s\nservices:\n%s", l.Director.Iface, strings.Join(services, ""))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
