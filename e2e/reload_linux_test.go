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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
)

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

// keepAlive is one long-lived client connection making a request every
// interval, and what became of it.
type keepAlive struct {
	server   string        // who answered its first request
	requests int           // answered requests
	err      error         // how it ended, nil if it is still fine
	failedIn time.Duration // from the failing request to its error
	failedAt time.Time
}

// TestReloadLive: while clients open a new connection every ~20 ms and
// four keep-alive connections make requests, SIGHUP the director with (1)
// a real server added, (2) one drained, (3) the drained one deleted, (4)
// a service added on a new VIP with its real server, (5) a broken file.
// No request fails and no keep-alive connection breaks, except those to
// the deleted server, which fail fast with a reset as with IPVS. Every
// step is checked in drlb ctl list.
func TestReloadLive(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 3})
	rs1, rs2, rs3 := l.RealServers[0], l.RealServers[1], l.RealServers[2]
	vip2 := netip.MustParseAddr("198.18.0.101")

	// rs3 also serves the new VIP (on lo, as any DR real server).
	nh := testutil.NetlinkHandle(t, rs3.NS)
	lo, err := nh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr(vip2.String() + "/32")
	if err := nh.AddrAdd(lo, addr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := l.Listen(ctx, rs3, "tcp", netip.AddrPortFrom(vip2, testbed.HTTPPort).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: testbed.NewHandler(rs3.Name), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	defer srv.Close()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "drlb.yaml")
	sock := filepath.Join(dir, "drlb.sock")
	type rsw struct {
		h *testbed.Host
		w int
	}
	write := func(services ...string) {
		t.Helper()
		body := fmt.Sprintf("interface: %s\nservices:\n%s", l.Director.Iface, strings.Join(services, ""))
		if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	svc := func(v netip.Addr, reals ...rsw) string {
		s := fmt.Sprintf("  - vip: %s\n    port: %d\n    scheduler: rr\n    realservers:\n", v, testbed.HTTPPort)
		for _, r := range reals {
			s += fmt.Sprintf("      - address: %s\n        weight: %d\n", r.h.IPv4, r.w)
		}
		return s
	}
	ctl := func() string {
		t.Helper()
		out, err := exec.Command(drlbBinary, "ctl", "list", "-s", sock).CombinedOutput()
		if err != nil {
			t.Fatalf("drlb ctl list: %v\n%s", err, out)
		}
		return string(out)
	}
	// row is a real server's line of drlb ctl list, fields folded:
	// "-> ADDR:80 Route WEIGHT ACTIVE INACTIVE" ("" when absent).
	row := func(list string, h *testbed.Host) string {
		return fieldsOf(list, fmt.Sprintf("  -> %s:%d", h.IPv4, testbed.HTTPPort))
	}
	// waitRow polls drlb ctl list until h's row starts with want (bounded).
	waitRow := func(h *testbed.Host, want string) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			list := ctl()
			if got := row(list, h); strings.HasPrefix(got+" ", want+" ") || want == "" && got == "" {
				return list
			}
			if time.Now().After(deadline) {
				t.Fatalf("drlb ctl list: %s row %q, want %q\n%s", h.Name, row(list, h), want, list)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	write(svc(l.VIP, rsw{rs1, 1}, rsw{rs2, 1}))
	p := startDirectorN(t, l, 2, "run", "-c", cfgPath, "-ctl", sock)
	applied := 0
	// hup signals drlb and waits until it applied the file; it returns
	// when the signal went.
	hup := func(what string) time.Time {
		t.Helper()
		applied++
		sent := time.Now()
		p.signal(syscall.SIGHUP)
		p.waitLog("configuration applied", applied, 10*time.Second)
		t.Logf("(%d) %s: applied", applied, what)
		return sent
	}

	// Four keep-alive connections first: rr puts two on rs1, two on rs2.
	web := netip.AddrPortFrom(l.VIP, testbed.HTTPPort).String()
	kas := make([]*keepAlive, 4)
	conns := make([]net.Conn, 4)
	readers := make([]*bufio.Reader, 4)
	for i := range kas {
		c, err := l.Dial(ctx, l.Client, "tcp", web)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, bufio.NewReader(c)
		server, err := askOnce(c, readers[i], l.VIP.String(), false)
		if err != nil {
			t.Fatalf("keep-alive %d: %v", i, err)
		}
		kas[i] = &keepAlive{server: server, requests: 1}
	}
	on := map[string]int{}
	for _, ka := range kas {
		on[ka.server]++
	}
	if on[rs1.Name] != 2 || on[rs2.Name] != 2 {
		t.Fatalf("keep-alive connections on %v, want two on rs1 and two on rs2", on)
	}

	// The traffic, bounded in count and time; stopped at the end.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	newConns := map[string]int{} // server -> new connections answered, per phase
	phase := "0"
	var failures []string
	for i, ka := range kas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 2000; n++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				start := time.Now()
				server, err := askOnce(conns[i], readers[i], l.VIP.String(), false)
				mu.Lock()
				switch {
				case err != nil:
					ka.err, ka.failedIn, ka.failedAt = err, time.Since(start), time.Now()
				case server != ka.server:
					ka.err = fmt.Errorf("answered by %s, was %s", server, ka.server)
				default:
					ka.requests++
				}
				mu.Unlock()
				if err != nil || server != ka.server {
					return
				}
			}
		}()
	}
	targets := []netip.Addr{l.VIP}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; n < 3000; n++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			mu.Lock()
			to, ph := targets[n%len(targets)], phase // as the request starts
			mu.Unlock()
			server, err := func() (string, error) {
				c, err := l.Dial(ctx, l.Client, "tcp", netip.AddrPortFrom(to, testbed.HTTPPort).String())
				if err != nil {
					return "", err
				}
				defer c.Close()
				return askOnce(c, bufio.NewReader(c), to.String(), true)
			}()
			mu.Lock()
			if err != nil {
				failures = append(failures, fmt.Sprintf("phase %s: new connection to %s: %v", ph, to, err))
			} else {
				newConns[ph+" "+to.String()+" "+server]++
			}
			mu.Unlock()
		}
	}()
	// Requests are counted by the phase they started in. A phase begins
	// once drlb applied its file; requests started while a reload is on
	// its way count in a transition phase, "t", which no check reads.
	setPhase := func(next string) {
		mu.Lock()
		phase = next
		mu.Unlock()
	}
	settle := func(next string) {
		setPhase(next)
		time.Sleep(1500 * time.Millisecond)
		setPhase("t")
	}
	served := func(ph string, v netip.Addr, h *testbed.Host) int { return newConns[ph+" "+v.String()+" "+h.Name] }

	waitRow(rs1, "-> "+rs1.IPv4.String()+":80 Route 1")
	settle("1")

	// (1) rs3 added, in front of the others.
	write(svc(l.VIP, rsw{rs3, 1}, rsw{rs1, 1}, rsw{rs2, 1}))
	hup("rs3 added")
	waitRow(rs3, "-> "+rs3.IPv4.String()+":80 Route 1")
	settle("2")

	// (2) rs2 drained: its two keep-alive connections are its only ones.
	write(svc(l.VIP, rsw{rs3, 1}, rsw{rs1, 1}, rsw{rs2, 0}))
	hup("rs2 drained")
	settle("3")
	waitRow(rs2, "-> "+rs2.IPv4.String()+":80 Route 0 2")

	// (3) rs2 deleted: its connections end at their next request.
	write(svc(l.VIP, rsw{rs3, 1}, rsw{rs1, 1}))
	deleted := hup("rs2 deleted")
	waitRow(rs2, "")
	settle("4")

	// (4) A service on a new VIP, with rs3.
	write(svc(l.VIP, rsw{rs3, 1}, rsw{rs1, 1}), svc(vip2, rsw{rs3, 1}))
	hup("service added on " + vip2.String())
	list := ctl()
	if !strings.Contains(list, "TCP  "+vip2.String()+":80 rr") || !strings.Contains(list, fmt.Sprintf("-> %s:80", rs3.IPv4)) {
		t.Fatalf("drlb ctl list lacks the new service:\n%s", list)
	}
	mu.Lock()
	targets = []netip.Addr{l.VIP, vip2}
	mu.Unlock()
	settle("5")

	// (5) A broken file: refused with its line, nothing changes.
	write(svc(l.VIP, rsw{rs3, 1}, rsw{rs1, -1}))
	before := ctl()
	p.signal(syscall.SIGHUP)
	p.waitLog("reload refused", 1, 10*time.Second)
	if !strings.Contains(p.logs.String(), cfgPath+":10:17: services[0].realservers[1].weight: \\\"-1\\\": must be 0..65535") {
		t.Errorf("refusal does not place the error at drlb.yaml:10:17:\n%s", p.logs.String())
	}
	settle("6")
	after := ctl()
	for _, h := range []*testbed.Host{rs1, rs3} {
		if b, a := row(before, h), row(after, h); len(strings.Fields(b)) < 4 || !strings.HasPrefix(a, strings.Join(strings.Fields(b)[:4], " ")) {
			t.Errorf("%s changed by a refused reload: %q -> %q", h.Name, b, a)
		}
	}
	if !strings.Contains(after, "TCP  "+vip2.String()+":80 rr") || row(after, rs2) != "" {
		t.Errorf("a refused reload changed the services:\n%s", after)
	}
	if n := strings.Count(p.logs.String(), "configuration applied"); n != applied {
		t.Errorf("%d configurations applied, want %d: the broken file was applied", n, applied)
	}

	close(stop)
	wg.Wait()

	// Requests on new connections: none failed, each step took effect
	// (the clients have stopped: no lock needed from here on).
	for _, f := range failures {
		t.Error(f)
	}
	total := 0
	for _, n := range newConns {
		total += n
	}
	if total < 200 {
		t.Errorf("only %d new connections answered: %v", total, newConns)
	}
	for _, c := range []struct {
		what  string
		phase string
		v     netip.Addr
		h     *testbed.Host
		some  bool
	}{
		{"rs3 before it was added", "1", l.VIP, rs3, false},
		{"rs3 once added", "2", l.VIP, rs3, true},
		{"rs2 while drained", "3", l.VIP, rs2, false},
		{"rs2 once deleted", "4", l.VIP, rs2, false},
		{"rs1 throughout", "4", l.VIP, rs1, true},
		{"the new VIP", "5", vip2, rs3, true},
	} {
		if n := served(c.phase, c.v, c.h); (n > 0) != c.some {
			t.Errorf("%s: %d new connections (want some: %v): %v", c.what, n, c.some, newConns)
		}
	}
	// Keep-alive connections: those on rs1 never broke; those on the
	// deleted rs2 ended with a reset at their first request after the
	// delete, within a second.
	for i, ka := range kas {
		switch ka.server {
		case rs1.Name:
			if ka.err != nil || ka.requests < 50 {
				t.Errorf("keep-alive %d on rs1: %d requests, ended by %v; want it unbroken", i, ka.requests, ka.err)
			}
		case rs2.Name:
			switch {
			case ka.err == nil:
				t.Errorf("keep-alive %d on the deleted rs2 still answered (%d requests)", i, ka.requests)
			case !errors.Is(ka.err, syscall.ECONNRESET):
				t.Errorf("keep-alive %d on rs2 ended by %v, want a reset", i, ka.err)
			case ka.failedIn > time.Second || ka.failedAt.Before(deleted):
				t.Errorf("keep-alive %d on rs2 failed %v after its request, at %v (deleted at %v): want fast, after the delete",
					i, ka.failedIn, ka.failedAt, deleted)
			case ka.requests < 50:
				t.Errorf("keep-alive %d on rs2 made only %d requests before the delete (drained, it should have gone on)", i, ka.requests)
			}
		}
	}
	t.Logf("new connections: %v", newConns)
	for i, ka := range kas {
		t.Logf("keep-alive %d on %s: %d requests, ended by %v (%v after its request)", i, ka.server, ka.requests, ka.err, ka.failedIn)
	}
}
