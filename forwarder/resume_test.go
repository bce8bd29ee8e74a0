package forwarder

import (
	"testing"
	"time"

	"github.com/drlb/drlb/config"
)

// TestRebuildKeepsRRPlace: every change that rebuilds an rr service's
// scheduler (a health verdict through SetHealth, a weight changed or a
// server removed by Apply) continues the round robin after the server last
// picked, as IPVS's rr does, instead of starting over at the first server:
// with a flapping server on a quiet service, nearly every new connection
// went to the first one.
func TestRebuildKeepsRRPlace(t *testing.T) {
	check := &config.Check{Type: "tcp", Interval: time.Second, Timeout: time.Second, RetryDelay: time.Second, Retries: 3}
	r1, r2, r3 := rsAt(1, 1), rsAt(2, 1), rsAt(3, 1)
	r1.Check, r2.Check, r3.Check = check, check, check
	cfg := cfgOf(svc(config.TCP, 80, "rr", r1, r2, r3))
	f := newForwarder(t, cfg, Options{})
	health := func(r config.RealServer, up bool) func() {
		return func() {
			if err := f.SetHealth(RealID{Protocol: config.TCP, VIP: vip, Port: 80, Addr: r.Address}, *check, up); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply := func(edit func(rs []config.RealServer) []config.RealServer) func() {
		return func() {
			next := cfg.Clone()
			next.Services[0].RealServers = edit(next.Services[0].RealServers)
			applyNow(t, f, next, t0)
			cfg = next
		}
	}
	for i, step := range []struct {
		name   string
		change func()
		want   config.RealServer
	}{
		{"first", nil, r1},
		{"r3 fails", health(r3, false), r2},
		{"r3 back", health(r3, true), r3},
		{"no change", nil, r1},
		{"r2's weight changed by Apply", apply(func(rs []config.RealServer) []config.RealServer {
			rs[1].Weight = 2
			return rs
		}), r2},
		{"r2, last picked, removed by Apply", apply(func(rs []config.RealServer) []config.RealServer {
			return append(rs[:1], rs[2])
		}), r3},
		{"after the removal", nil, r1},
	} {
		if step.change != nil {
			step.change()
		}
		res := send(t, f, cfg, syn(client(i, 40000)), t0)
		expect(t, res, Forward, ReasonNew)
		if got := to(cfg, res); got != step.want.Address {
			t.Errorf("%s: new connection went to %s, want %s", step.name, got, step.want.Address)
		}
	}
}
