package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
)

// marker records verdicts.
type marker struct {
	mu     sync.Mutex
	events []string
}

func (m *marker) Mark(t Target, up bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
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

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestWatch drives the state machine with a scripted probe: retries
// failures before down, one success to come back, remove or inhibit.
func TestWatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inhibit bool
		script  string // one letter per probe: o ok, x fail
		want    []string
	}{
		{"healthy", false, "oooo", nil},
		{"short blip", false, "oxxooo", nil},
		{"down and back", false, "oxxxxo", []string{"down", "up"}},
		{"inhibit", true, "xxxoo", []string{"inhibited", "restored"}},
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

// TestProbe checks real probes against servers on loopback.
func TestProbe(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok"))
			return
		}
		http.NotFound(w, r)
	}))
	defer ok.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	addr := func(url string) netip.AddrPort { return netip.MustParseAddrPort(url[len("http://"):]) }
	addrTLS := func(url string) netip.AddrPort { return netip.MustParseAddrPort(url[len("https://"):]) }
	check := func(typ, path string, status int) config.Check {
		return config.Check{Type: typ, Path: path, Status: status, Timeout: 2 * time.Second}
	}
	for _, tc := range []struct {
		name string
		t    Target
		ok   bool
	}{
		{"tcp open", Target{Addr: addr(ok.URL), Check: check("tcp", "", 0)}, true},
		{"tcp refused", Target{Addr: closedAddr, Check: check("tcp", "", 0)}, false},
		{"http 200", Target{Addr: addr(ok.URL), Check: check("http", "/healthz", 200)}, true},
		{"http 404", Target{Addr: addr(ok.URL), Check: check("http", "/missing", 200)}, false},
		{"http expects 404", Target{Addr: addr(ok.URL), Check: check("http", "/missing", 404)}, true},
		{"https self-signed", Target{Addr: addrTLS(tlsSrv.URL), Check: check("https", "/", 200)}, true},
		{"unknown type", Target{Addr: addr(ok.URL), Check: check("icmp", "", 0)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Probe(context.Background(), tc.t)
			if (err == nil) != tc.ok {
				t.Fatalf("Probe = %v, want ok=%v", err, tc.ok)
			}
		})
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
	waitFor("b down then up", func() bool { return len(m.got()) == 2 })
	if got := m.got(); got[0] != "down" || got[1] != "up" {
		t.Fatalf("events %v, want b down (its third failure, counted across the Update) then up", got)
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
