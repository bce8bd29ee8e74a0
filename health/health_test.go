package health

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
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
		{"a first failure, then a pass", false, "xxoo", []string{"up"}},
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mo := NewMonitor(&marker{}, nil)
	mo.probe = func(context.Context, Target) error {
		cancel()
		return nil
	}
	mo.Update([]Target{{Check: config.Check{Type: "tcp", Interval: time.Microsecond, Timeout: time.Second, Retries: 1}}})
	mo.Run(ctx)
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
// delay_before_retry); once down, after Interval again.
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
		watch(ctx, target, m, quiet, probe)
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
