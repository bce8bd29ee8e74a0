package health

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/testutil"
)

// marker records verdicts.
type marker struct {
	mu     sync.Mutex
	events []string
	names  []string // the target of each event
}

func (m *marker) Mark(t Target, up bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.names = append(m.names, t.Name)
	switch {
	case t.Check.Inhibit && up:
		m.events = append(m.events, "restored")
	case t.Check.Inhibit:
		m.events = append(m.events, "inhibited")
	case up:
		m.events = append(m.events, "up")
	default:
		m.events = append(m.events, "down")
	}
	return nil
}

func (m *marker) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.events...)
}

// of returns the events of the target called name.
func (m *marker) of(name string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for i, n := range m.names {
		if n == name {
			out = append(out, m.events[i])
		}
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestWatch drives the state machine with a scripted probe: retries
// failures before down, one success to come back, remove or inhibit, and
// the first pass marked (up, as the server already is) so that the
// director knows the check has answered.
func TestWatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inhibit bool
		script  string // one letter per probe: o ok, x fail
		want    []string
	}{
		{"healthy", false, "oooo", []string{"up"}},
		{"short blip", false, "oxxooo", []string{"up"}},
		{"down and back", false, "oxxxxo", []string{"up", "down", "up"}},
		// keepalived: "one failure is enough initially", until the
		// first pass; retries count from there.
		{"a first failure takes it down", false, "xxoo", []string{"down", "up"}},
		{"a first failure, inhibit", true, "xo", []string{"inhibited", "restored"}},
		{"a pass, then retries count", false, "oxxo", []string{"up"}},
		{"inhibit", true, "xxxoo", []string{"inhibited", "restored"}},
		{"inhibit, healthy", true, "oo", []string{"restored"}},
		{"flaps", false, "xxxoxxx", []string{"down", "up", "down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &marker{}
			target := Target{Check: config.Check{Type: "tcp", Interval: time.Microsecond, Timeout: time.Second, Retries: 3, Inhibit: tc.inhibit}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			i := 0
			probe := func(context.Context, Target) error {
				if i == len(tc.script) {
					cancel()
					return nil
				}
				c := tc.script[i]
				i++
				if c == 'x' {
					return errors.New("refused")
				}
				return nil
			}
			watch(ctx, target, m, quiet, probe)
			got := m.got()
			if len(got) != len(tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
			for k := range got {
				if got[k] != tc.want[k] {
					t.Fatalf("events %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestNilLogger: a Monitor made without a logger logs to slog.Default()
// instead of panicking at the first change of state.
func TestNilLogger(t *testing.T) {
	var logs testutil.SyncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mo := NewMonitor(&marker{}, nil)
	// The first probe fails: the server goes down, which is logged. The
	// second ends the test, after that log line.
	probes := 0
	mo.probe = func(context.Context, Target) error {
		if probes++; probes == 1 {
			return errors.New("refused")
		}
		cancel()
		return nil
	}
	mo.Update([]Target{{Name: "rs1", Check: config.Check{Type: "tcp", Interval: time.Microsecond, Timeout: time.Second, Retries: 1}}})
	mo.Run(ctx)
	if !strings.Contains(logs.String(), "real server down") || !strings.Contains(logs.String(), "rs1") {
		t.Errorf("a Monitor without a logger logged %q to slog.Default(), want the server going down", logs.String())
	}
}

// TestProbe checks real probes against servers on the loopback of the
// tests' own network namespace.
func TestProbe(t *testing.T) {
	ok := testutil.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok"))
		case "/host":
			w.Write([]byte(r.Host))
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusMovedPermanently)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}), false)
	tlsSrv := testutil.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }), true)
	closed, _ := net.Listen("tcp", testutil.LoopbackAny(t))
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	addr := func(url string) netip.AddrPort { return netip.MustParseAddrPort(url[len("http://"):]) }
	addrTLS := func(url string) netip.AddrPort { return netip.MustParseAddrPort(url[len("https://"):]) }
	status := func(lo, hi int) []config.StatusRange { return []config.StatusRange{{Min: lo, Max: hi}} }
	check := func(typ string, urls ...config.URL) config.Check {
		return config.Check{Type: typ, URLs: urls, Timeout: 2 * time.Second}
	}
	url := func(path string, want int) config.URL { return config.URL{Path: path, Status: status(want, want)} }
	md5ok := "444bcb3a3fcf8389296c49467f27e1d6" // MD5("ok"), as genhash prints it
	// /host answers with the Host header: the digest tells which was sent.
	hostCheck := check("http", config.URL{Path: "/host", Status: status(200, 200), Digest: md5hex("www.example")})
	hostCheck.Host = "www.example"
	noHost := check("http", config.URL{Path: "/host", Status: status(200, 200), Digest: md5hex("www.example")})
	// A URL's own host comes before the check's (keepalived's url virtualhost).
	urlHost := check("http", config.URL{Path: "/host", Status: status(200, 200), Digest: md5hex("www.example"), Host: "www.example"})
	urlHost.Host = "other.example"
	for _, tc := range []struct {
		name string
		t    Target
		ok   bool
	}{
		{"tcp open", Target{Addr: addr(ok.URL), Check: check("tcp")}, true},
		{"tcp refused", Target{Addr: closedAddr, Check: check("tcp")}, false},
		{"http 200", Target{Addr: addr(ok.URL), Check: check("http", url("/healthz", 200))}, true},
		{"http 404", Target{Addr: addr(ok.URL), Check: check("http", url("/missing", 200))}, false},
		{"http expects 404", Target{Addr: addr(ok.URL), Check: check("http", url("/missing", 404))}, true},
		{"http range 200-299 takes 204", Target{Addr: addr(ok.URL), Check: check("http", config.URL{Path: "/nocontent", Status: status(200, 299)})}, true},
		{"http redirect not followed", Target{Addr: addr(ok.URL), Check: check("http", url("/moved", 200))}, false},
		{"http redirect expected", Target{Addr: addr(ok.URL), Check: check("http", url("/moved", 301))}, true},
		{"http digest matches", Target{Addr: addr(ok.URL), Check: check("http", config.URL{Path: "/healthz", Status: status(200, 200), Digest: md5ok})}, true},
		{"http digest differs", Target{Addr: addr(ok.URL), Check: check("http", config.URL{Path: "/healthz", Status: status(200, 200), Digest: "640205b7b0fc66c1ea91c463fac6334d"})}, false},
		{"http every url must pass", Target{Addr: addr(ok.URL), Check: check("http", url("/healthz", 200), url("/missing", 200))}, false},
		{"http all urls pass", Target{Addr: addr(ok.URL), Check: check("http", url("/healthz", 200), url("/missing", 404))}, true},
		{"http host header", Target{Addr: addr(ok.URL), Check: hostCheck}, true},
		{"http without host header", Target{Addr: addr(ok.URL), Check: noHost}, false},
		{"http url host header first", Target{Addr: addr(ok.URL), Check: urlHost}, true},
		{"https self-signed", Target{Addr: addrTLS(tlsSrv.URL), Check: check("https", url("/", 200))}, true},
		{"https digest", Target{Addr: addrTLS(tlsSrv.URL), Check: check("https", config.URL{Path: "/", Status: status(200, 200), Digest: md5ok})}, true},
		{"unknown type", Target{Addr: addr(ok.URL), Check: check("icmp")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Probe(context.Background(), tc.t)
			if (err == nil) != tc.ok {
				t.Fatalf("Probe = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// rawHTTP is an HTTP server that records each request line as it came
// and answers 200 "ok": a path Go's own server would refuse (a bad
// escape) reaches it.
func rawHTTP(t *testing.T) (netip.AddrPort, func() []string) {
	t.Helper()
	var (
		mu    sync.Mutex
		lines []string
	)
	addr := rawTCP(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		mu.Lock()
		lines = append(lines, strings.TrimRight(line, "\r\n"))
		mu.Unlock()
		if skipHeaders(r) != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
	return addr, got
}

// skipHeaders reads header lines up to the blank one.
func skipHeaders(r *bufio.Reader) error {
	for {
		h, err := r.ReadString('\n')
		if err != nil || h == "\r\n" || h == "\n" {
			return err
		}
	}
}

// rawTCP listens on loopback until the test ends and serves each
// connection with serve, in a goroutine of its own, closing it after:
// for servers Go's own would not be (raw request lines, broken answers).
func rawTCP(t *testing.T, serve func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// TestProbePathAsWritten: the path goes into the request line as written,
// as keepalived sends it: a "%" without two hex digits, a "#", bytes a
// URL would escape; a path starting with "//" (which validation lets
// through only when parsing keeps it whole) too.
func TestProbePathAsWritten(t *testing.T) {
	srv, lines := rawHTTP(t)
	paths := []string{"/100%-ok", "/a#b", "/caf\u00e9", "/status?full&x=%zz", "//twice/%41", "/"}
	for _, p := range paths {
		tg := Target{Addr: srv, Check: config.Check{Type: "http", Timeout: 2 * time.Second,
			URLs: []config.URL{{Path: p, Status: []config.StatusRange{{Min: 200, Max: 200}}, Digest: md5hex("ok")}}}}
		if err := Probe(context.Background(), tg); err != nil {
			t.Errorf("path %q: Probe = %v", p, err)
		}
	}
	got := lines()
	if len(got) != len(paths) {
		t.Fatalf("request lines %q, want one per path %q", got, paths)
	}
	for i, p := range paths {
		if want := "GET " + p + " HTTP/1.1"; got[i] != want {
			t.Errorf("request line %q, want %q", got[i], want)
		}
	}
	// Over TLS too; Go's server takes "#" as part of the path.
	var uri atomic.Value
	tlsSrv := testutil.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri.Store(r.RequestURI)
		w.Write([]byte("ok"))
	}), true)
	tg := Target{Addr: netip.MustParseAddrPort(tlsSrv.URL[len("https://"):]), Check: config.Check{Type: "https", Timeout: 2 * time.Second,
		URLs: []config.URL{{Path: "/a#b", Status: []config.StatusRange{{Min: 200, Max: 200}}}}}}
	if err := Probe(context.Background(), tg); err != nil || uri.Load() != "/a#b" {
		t.Fatalf("https: Probe = %v, the server saw %v, want /a#b", err, uri.Load())
	}
}

// TestProbeAdversarial: a server streaming an endless body, one that
// stalls the TLS handshake, one that never answers: each probe ends within
// its timeout and leaves no goroutine behind.
func TestProbeAdversarial(t *testing.T) {
	endless := testutil.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<16)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}), false)
	stall, err := net.Listen("tcp", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	var (
		mu   sync.Mutex
		held []net.Conn
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read, never written
			mu.Unlock()
		}
	}()
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	st := []config.StatusRange{{Min: 200, Max: 299}}
	digest := config.URL{Path: "/", Status: st, Digest: md5hex("ok")}
	before := runtime.NumGoroutine()
	for _, tc := range []struct {
		name string
		t    Target
	}{
		{"endless body with digest", Target{Addr: ap(endless.URL[len("http://"):]), Check: config.Check{Type: "http", URLs: []config.URL{digest}, Timeout: 300 * time.Millisecond}}},
		{"stalled TLS", Target{Addr: ap(stall.Addr().String()), Check: config.Check{Type: "https", URLs: []config.URL{digest}, Timeout: 300 * time.Millisecond}}},
		{"stalled HTTP", Target{Addr: ap(stall.Addr().String()), Check: config.Check{Type: "http", URLs: []config.URL{digest}, Timeout: 300 * time.Millisecond}}},
	} {
		start := time.Now()
		err := Probe(context.Background(), tc.t)
		// A hang guard, not a speed target: a probe that ignored its
		// timeout would wait for ever on these servers.
		if took := time.Since(start); err == nil || took > tc.t.Check.Timeout+slowMargin {
			t.Errorf("%s: err %v after %v, timeout %v", tc.name, err, took, tc.t.Check.Timeout)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+1 {
		t.Errorf("goroutines %d -> %d", before, after)
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// udpServer answers each datagram on testutil.LoopbackAddr with answer(datagram), or
// not at all when answer returns nil.
func udpServer(t *testing.T, answer func([]byte) []byte) netip.AddrPort {
	t.Helper()
	c, err := net.ListenPacket("udp", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if a := answer(buf[:n]); a != nil {
				c.WriteTo(a, from)
			}
		}
	}()
	return netip.MustParseAddrPort(c.LocalAddr().String())
}

// TestProbeUDP runs udp checks against a local echo, a silent server and
// a closed port, as keepalived's UDP_CHECK judges them.
func TestProbeUDP(t *testing.T) {
	echo := udpServer(t, func(b []byte) []byte { return append([]byte(nil), b...) })
	silent := udpServer(t, func([]byte) []byte { return nil })
	long := udpServer(t, func([]byte) []byte { return make([]byte, 300) })
	closedConn, err := net.ListenPacket("udp", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(closedConn.LocalAddr().String())
	closedConn.Close()
	udp := func(payload []byte, require bool, reply, mask []byte) config.Check {
		return config.Check{Type: "udp", Payload: payload, RequireReply: require, Reply: reply, ReplyMask: mask,
			ReplyMax: config.DefaultUDPReplyMax, Timeout: 300 * time.Millisecond}
	}
	for _, tc := range []struct {
		name  string
		addr  netip.AddrPort
		check config.Check
		ok    bool
	}{
		{"echo answers", echo, udp(nil, false, nil, nil), true},
		{"echo answers, reply required", echo, udp([]byte{1, 2, 3}, true, nil, nil), true},
		{"echo matches the reply", echo, udp([]byte{0xab, 0x12, 0x0f}, true, []byte{0xab, 0x12}, nil), true},
		{"echo does not match", echo, udp([]byte{0xab, 0x12}, true, []byte{0xab, 0x13}, nil), false},
		{"x digits ignored", echo, udp([]byte{0xab, 0x12}, true, []byte{0xa0, 0x10}, []byte{0x0f, 0x0f}), true},
		{"reply longer than the answer compares the answer", echo, udp([]byte{0xab}, true, []byte{0xab, 0xcd}, nil), true},
		{"answer too long", long, udp(nil, true, []byte{0}, nil), false},
		{"silence without require_reply passes", silent, udp(nil, false, nil, nil), true},
		{"silence with require_reply fails", silent, udp(nil, true, nil, nil), false},
		{"closed port: ICMP port unreachable", closed, udp(nil, false, nil, nil), false},
		{"closed port, reply required", closed, udp(nil, true, nil, nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Probe(context.Background(), Target{Addr: tc.addr, Check: tc.check})
			if (err == nil) != tc.ok {
				t.Fatalf("Probe = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c := udp(nil, false, nil, nil)
		c.Timeout = 5 * time.Second
		if err := Probe(ctx, Target{Addr: silent, Check: c}); err == nil {
			t.Fatal("a cancelled probe passed")
		}
	})
}

// TestWatchRetryDelay: after a failure, while the server is still up, the
// next probe comes after RetryDelay, not Interval (keepalived's
// delay_before_retry); once down, after Interval again. The check has
// passed before (until its first pass, one failure is enough).
func TestWatchRetryDelay(t *testing.T) {
	target := Target{Check: config.Check{Type: "tcp", Interval: time.Hour, RetryDelay: time.Millisecond, Timeout: time.Second, Retries: 3}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := &marker{}
	var probes atomic.Int32
	probe := func(context.Context, Target) error {
		probes.Add(1)
		return errors.New("refused")
	}
	done := make(chan struct{})
	go func() {
		c := &check{t: target, st: state{up: true}} // up, and has passed before
		c.watch(ctx, m, quiet, probe)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(m.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a fourth probe would come now with the retry delay
	cancel()
	<-done
	if got := m.got(); len(got) != 1 || got[0] != "down" {
		t.Fatalf("events %v, want [down] within 5s (retries 1ms apart, not 1h)", got)
	}
	if n := probes.Load(); n != 3 {
		t.Fatalf("%d probes, want 3: down after 3 failures, then the 1h interval", n)
	}
}

func TestTargets(t *testing.T) {
	vip := netip.MustParseAddr("198.18.0.100")
	chk := &config.Check{Type: "tcp", Retries: 1}
	cfg := &config.Config{Services: []config.Service{
		{VIP: vip, Port: 80, Protocol: config.TCP, RealServers: []config.RealServer{
			{Address: netip.MustParseAddr("198.18.0.11"), Weight: 2, Check: chk},
			{Address: netip.MustParseAddr("198.18.0.12"), Weight: 1},
		}},
	}}
	ts, err := Targets(cfg)
	if err != nil || len(ts) != 1 || ts[0].Addr.String() != "198.18.0.11:80" || ts[0].Real != ts[0].Addr.Addr() ||
		ts[0].Protocol != config.TCP || ts[0].VIP != vip || ts[0].Port != 80 || ts[0].Name != "tcp 198.18.0.100:80 -> 198.18.0.11" {
		t.Fatalf("Targets = %+v, %v", ts, err)
	}
	cfg.Services[0].Port = 0
	if _, err := Targets(cfg); err == nil {
		t.Fatal("every-port service without check.port accepted")
	}
}

// TestMonitorUpdate: an Update stops the checks that are gone, starts the
// new ones, and keeps those that stay running with their state.
func TestMonitorUpdate(t *testing.T) {
	check := config.Check{Type: "tcp", Interval: time.Millisecond, Timeout: time.Second, Retries: 3}
	target := func(last byte) Target {
		a := netip.AddrFrom4([4]byte{198, 18, 0, last})
		return Target{Protocol: config.TCP, VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Real: a,
			Addr: netip.AddrPortFrom(a, 80), Check: check, Name: a.String()}
	}
	a, b, c := target(11), target(12), target(13)
	var mu sync.Mutex
	probes := map[netip.Addr]int{}
	gate := make(chan struct{}) // b's third probe waits for the Update
	m := &marker{}
	mo := NewMonitor(m, quiet)
	mo.probe = func(ctx context.Context, t Target) error {
		mu.Lock()
		probes[t.Real]++
		n := probes[t.Real]
		mu.Unlock()
		if t.Real == b.Real {
			if n == 3 {
				select {
				case <-gate:
				case <-ctx.Done():
				}
			}
			if n <= 4 {
				return errors.New("refused") // b fails 4 times: down at its third failure
			}
		}
		return nil
	}
	if started, _ := mo.Update([]Target{a, b}); started != 2 {
		t.Fatalf("started %d, want 2", started)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mo.Run(ctx); close(done) }()
	count := func(addr netip.Addr) int {
		mu.Lock()
		defer mu.Unlock()
		return probes[addr]
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("b's third probe", func() bool { return count(b.Real) >= 3 })
	changed := b
	changed.Check.Retries = 3 // the same check: b stays
	if started, stopped := mo.Update([]Target{changed, c}); started != 1 || stopped != 1 {
		t.Fatalf("Update started %d stopped %d, want 1 and 1", started, stopped)
	}
	close(gate)
	waitFor("c's probes", func() bool { return count(c.Real) >= 3 })
	waitFor("b down then up", func() bool { return len(m.of(b.Name)) == 2 })
	if got := m.of(b.Name); got[0] != "down" || got[1] != "up" {
		t.Fatalf("events %v, want b down (its third failure, counted across the Update) then up", got)
	}
	for _, x := range []Target{a, c} {
		if got := m.of(x.Name); len(got) != 1 || got[0] != "up" {
			t.Fatalf("%s: events %v, want its first pass marked up", x.Name, got)
		}
	}
	stopped := count(a.Real)
	time.Sleep(20 * time.Millisecond)
	if n := count(a.Real); n != stopped {
		t.Fatalf("a's check still runs after the Update: %d probes, then %d", stopped, n)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// answered is a probe the test answers one call at a time, per check
// (Target.key): the loop a reload replaces never takes an answer meant for
// the one replacing it.
type answered struct {
	mu      sync.Mutex
	ch      map[string]chan error
	calls   map[string]int // probes begun
	answers map[string]int // answers taken
}

func (a *answered) of(t Target) chan error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil {
		a.ch = map[string]chan error{}
	}
	c := a.ch[t.key()]
	if c == nil {
		c = make(chan error)
		a.ch[t.key()] = c
	}
	return c
}

func (a *answered) probe(ctx context.Context, t Target) error {
	a.mu.Lock()
	if a.calls == nil {
		a.calls, a.answers = map[string]int{}, map[string]int{}
	}
	a.calls[t.key()]++
	a.mu.Unlock()
	select {
	case err := <-a.of(t):
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idle waits until t's loop waits for its next answer: it has stored and
// marked what the last one said.
func (a *answered) idle(tb testing.TB, t Target) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		a.mu.Lock()
		waiting := a.calls[t.key()] > a.answers[t.key()]
		a.mu.Unlock()
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: no probe within 5s", t.Name)
		}
	}
}

// answer makes t's next probe pass (nil) or fail; it returns once the
// loop took the answer, so every mark of the probe before is made.
func (a *answered) answer(tb testing.TB, t Target, err error) {
	tb.Helper()
	select {
	case a.of(t) <- err:
		a.mu.Lock()
		a.answers[t.key()]++
		a.mu.Unlock()
	case <-time.After(5 * time.Second):
		tb.Fatalf("%s: no probe within 5s", t.Name)
	}
}

// TestMonitorFirstFailure: a check that has not passed yet takes its
// server down at its first failure, as keepalived's checkers that have
// not run do ("one failure is enough initially"): at start, and for a
// server a reload adds. Once it has passed, retries count.
func TestMonitorFirstFailure(t *testing.T) {
	refused := errors.New("refused")
	for _, tc := range []struct {
		name    string
		reload  bool // the check comes with an Update after Run
		retries int
		inhibit bool
		script  string // o pass, x fail
		want    []string
	}{
		{"at start, dead: down at the first failure", false, 3, false, "xo", []string{"down", "up"}},
		{"at start, dead, inhibit: weight 0 at the first failure", false, 2, true, "xo", []string{"inhibited", "restored"}},
		{"at start, a pass first: retries count", false, 3, false, "oxxo", []string{"up"}},
		{"at start, a pass first: down at the third failure", false, 3, false, "oxxx", []string{"up", "down"}},
		{"added by a reload, dead: down at the first failure", true, 3, false, "xo", []string{"down", "up"}},
		{"added by a reload, a pass first: retries count", true, 3, false, "oxx", []string{"up"}},
		{"one retry", false, 1, false, "x", []string{"down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr("198.18.0.11")
			tg := Target{Protocol: config.TCP, VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Real: a, Name: "rs",
				Addr:  netip.AddrPortFrom(a, 80),
				Check: config.Check{Type: "tcp", Interval: time.Millisecond, RetryDelay: time.Millisecond, Timeout: time.Second, Retries: tc.retries, Inhibit: tc.inhibit}}
			m := &marker{}
			var p answered
			mo := NewMonitor(m, quiet)
			mo.probe = p.probe
			if !tc.reload {
				mo.Update([]Target{tg})
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { mo.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if tc.reload {
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
					mo.mu.Lock()
					running := mo.ctx != nil
					mo.mu.Unlock()
					if running {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("Run did not start within 5s")
					}
				}
				if started, _ := mo.Update([]Target{tg}); started != 1 {
					t.Fatalf("Update started %d, want 1", started)
				}
			}
			for _, c := range tc.script {
				var err error
				if c == 'x' {
					err = refused
				}
				p.answer(t, tg, err)
			}
			p.idle(t, tg) // the last answer is marked
			if got := m.got(); !slices.Equal(got, tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMonitorReloadKeepsState: a reload that changes only a check's
// timers or inhibit hands its state (down, or the failures counted) to
// the check replacing it, which goes on from there and marks a server
// already down down again at its first failure; one that changes what the
// check probes starts the server up but one failure from down, as
// keepalived's migrate_checkers does.
func TestMonitorReloadKeepsState(t *testing.T) {
	refused := errors.New("refused")
	for _, tc := range []struct {
		name   string
		before string // o pass, x fail, before the reload
		change func(*config.Check)
		after  string // after it; one more pass follows
		want   []string
	}{
		{"down, interval and retries changed: still down", "xxx",
			func(c *config.Check) { c.Interval, c.Retries = 2*time.Millisecond, 5 }, "xxo",
			[]string{"down", "down", "up"}},
		{"down, inhibit set: still down, now inhibited", "xxx",
			func(c *config.Check) { c.Inhibit = true }, "xo",
			[]string{"down", "inhibited", "restored"}},
		{"two failures counted, retry delay changed: the third takes it down", "oxx",
			func(c *config.Check) { c.RetryDelay = 2 * time.Millisecond }, "xo",
			[]string{"up", "down", "up"}},
		{"up, timeout changed: one failure takes it down", "o",
			func(c *config.Check) { c.Timeout = 2 * time.Second }, "xo",
			[]string{"up", "down", "up"}},
		{"up, port changed: one failure takes it down", "o",
			func(c *config.Check) { c.Port = 8080 }, "xo",
			[]string{"up", "down", "up"}},
		{"up, only the interval changed: one failure is not enough", "o",
			func(c *config.Check) { c.Interval = 2 * time.Millisecond }, "xxo",
			[]string{"up", "up"}}, // the new loop's first pass is marked, as any check's
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr("198.18.0.11")
			tg := Target{Protocol: config.TCP, VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Real: a, Name: "rs",
				Addr:  netip.AddrPortFrom(a, 80),
				Check: config.Check{Type: "tcp", Interval: time.Millisecond, RetryDelay: time.Millisecond, Timeout: time.Second, Retries: 3}}
			m := &marker{}
			var p answered
			mo := NewMonitor(m, quiet)
			mo.probe = p.probe
			mo.Update([]Target{tg})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { mo.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			script := func(tg Target, s string) {
				for _, c := range s {
					var err error
					if c == 'x' {
						err = refused
					}
					p.answer(t, tg, err)
				}
			}
			script(tg, tc.before)
			p.idle(t, tg) // the state the reload hands on is the last answer's
			next := tg
			next.Check = *tg.Check.Clone()
			tc.change(&next.Check)
			if next.Check.Port != 0 {
				next.Addr = netip.AddrPortFrom(a, next.Check.Port) // as Targets makes it
			}
			if started, stopped := mo.Update([]Target{next}); started != 1 || stopped != 1 {
				t.Fatalf("Update started %d stopped %d, want the check replaced", started, stopped)
			}
			script(next, tc.after+"o") // the last pass marks what the one before did
			if got := m.got(); !slices.Equal(got, tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
		})
	}
}

// TestProbeReadsWholeBody: the body is read to its end with or without a
// digest, as keepalived reads until the server closes: headers then a
// stall, or a reset, fail; a body the server's close cuts short is judged
// on what came (keepalived logs the length mismatch, and passes).
func TestProbeReadsWholeBody(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nok"
	for _, tc := range []struct {
		name   string
		digest string
		then   func(c *net.TCPConn) // after head; the connection is closed after it
		ok     bool
	}{
		{"headers then a stall", "", func(c *net.TCPConn) { time.Sleep(2 * time.Second) }, false},
		{"headers then a reset", "", func(c *net.TCPConn) { c.SetLinger(0) }, false},
		{"short body, closed", "", func(*net.TCPConn) {}, true},
		{"short body, closed, digest of what came", md5hex("ok"), func(*net.TCPConn) {}, true},
		{"headers then a stall, digest", md5hex("ok"), func(c *net.TCPConn) { time.Sleep(2 * time.Second) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawTCP(t, func(c net.Conn) {
				r := bufio.NewReader(c)
				if skipHeaders(r) != nil { // the request
					return
				}
				io.WriteString(c, head)
				time.Sleep(50 * time.Millisecond) // the head goes out before a reset
				tc.then(c.(*net.TCPConn))
			})
			tg := Target{Addr: addr, Check: config.Check{Type: "http", Timeout: 500 * time.Millisecond,
				URLs: []config.URL{{Path: "/", Status: []config.StatusRange{{Min: 200, Max: 299}}, Digest: tc.digest}}}}
			if err := Probe(context.Background(), tg); (err == nil) != tc.ok {
				t.Fatalf("Probe = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestProbeHTTPSCipherSuites: an SSL_GET reaches a real server that
// offers only RSA key exchange (older appliances, TLS 1.2 at most), as
// keepalived's OpenSSL client does: Go's defaults leave those suites out,
// and the check took a working server for dead.
func TestProbeHTTPSCipherSuites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		suite uint16
	}{
		{"RSA AES-128-GCM", tls.TLS_RSA_WITH_AES_128_GCM_SHA256},
		{"RSA AES-256-GCM", tls.TLS_RSA_WITH_AES_256_GCM_SHA384},
		{"RSA AES-128-CBC", tls.TLS_RSA_WITH_AES_128_CBC_SHA},
		{"RSA AES-256-CBC", tls.TLS_RSA_WITH_AES_256_CBC_SHA},
		{"ECDHE-RSA AES-128-GCM", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", testutil.LoopbackAny(t))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
			srv.Listener.Close()
			srv.Listener = ln
			srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tc.suite}}
			srv.StartTLS()
			defer srv.Close()
			tg := Target{Addr: netip.MustParseAddrPort(ln.Addr().String()), Check: config.Check{Type: "https", Timeout: 2 * time.Second,
				URLs: []config.URL{{Path: "/", Status: []config.StatusRange{{Min: 200, Max: 200}}, Digest: md5hex("ok")}}}}
			if err := Probe(context.Background(), tg); err != nil {
				t.Fatalf("Probe = %v", err)
			}
		})
	}
}

// TestProbeHeaderBound: a page whose response headers outgrow
// maxCheckHeaderBytes fails its check, where Go's 10 MB default had the
// probe read and keep them all (about 40 MB per probe); ordinary headers
// pass.
func TestProbeHeaderBound(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header int // bytes of extra header lines
		ok     bool
	}{
		{"a few kilobytes of headers", 8 << 10, true},
		{"a megabyte of headers", 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawTCP(t, func(c net.Conn) {
				_, _ = c.Read(make([]byte, 4096))
				w := bufio.NewWriter(c)
				w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
				for n := 0; n < tc.header; n += 64 {
					fmt.Fprintf(w, "X-Pad: %056d\r\n", n)
				}
				w.WriteString("\r\nok")
				_ = w.Flush()
			})
			target := Target{Addr: addr, Check: config.Check{Type: "http", Timeout: 2 * time.Second,
				URLs: []config.URL{{Path: "/", Status: []config.StatusRange{{Min: 200, Max: 299}}, Digest: md5hex("ok")}}}}
			if err := Probe(context.Background(), target); (err == nil) != tc.ok {
				t.Errorf("Probe: %v, want ok %v", err, tc.ok)
			}
		})
	}
}
