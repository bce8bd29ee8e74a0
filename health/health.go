package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/drlb/drlb/config"
)

// Target is one real server of one service to check. It names the
// server by what stays true across configuration changes (protocol, VIP,
// service port, address), never by index, so a check keeps marking the
// right server however a reload moves the others.
type Target struct {
	Protocol config.Protocol
	VIP      netip.Addr
	Port     uint16         // the service port (0: every port)
	Real     netip.Addr     // the real server
	Name     string         // for logs: "tcp 198.18.0.100:80 -> 198.18.0.11"
	Addr     netip.AddrPort // where the probe goes: the real server's own address
	Check    config.Check
}

// Marker applies a verdict to the real server t names: up, or down, which
// is removed, or with t.Check.Inhibit quiesced (weight 0) without
// forgetting its configured weight. The director's marker updates the
// forwarder, and ignores a verdict from a check the running configuration
// no longer has.
type Marker interface {
	Mark(t Target, up bool) error
}

// Targets lists the checks of cfg. A check without a port probes the
// service port; a port-0 (every port) service needs check.port.
func Targets(cfg *config.Config) ([]Target, error) {
	var out []Target
	for _, s := range cfg.Services {
		for _, r := range s.RealServers {
			if r.Check == nil {
				continue
			}
			port := r.Check.Port
			if port == 0 {
				port = s.Port
			}
			if port == 0 {
				return nil, fmt.Errorf("health: %s real server %s: a service on every port needs check.port", s.String(), r.Address)
			}
			out = append(out, Target{
				Protocol: s.Protocol, VIP: s.VIP, Port: s.Port, Real: r.Address, Check: *r.Check,
				Name: fmt.Sprintf("%s -> %s", s.String(), r.Address),
				Addr: netip.AddrPortFrom(r.Address, port),
			})
		}
	}
	return out, nil
}

// Probe runs one check against t and returns nil if it passed.
func Probe(ctx context.Context, t Target) error {
	ctx, cancel := context.WithTimeout(ctx, t.Check.Timeout)
	defer cancel()
	switch t.Check.Type {
	case "tcp":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", t.Addr.String())
		if err != nil {
			return err
		}
		return c.Close()
	case "http", "https":
		url := fmt.Sprintf("%s://%s%s", t.Check.Type, t.Addr, t.Check.Path)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		tr := &http.Transport{
			// Like keepalived's SSL_GET: the real server's certificate
			// is for the VIP's name, not its own address.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
			Proxy:             nil,
		}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != t.Check.Status {
			return fmt.Errorf("GET %s: status %d, want %d", url, resp.StatusCode, t.Check.Status)
		}
		return nil
	}
	return fmt.Errorf("health: unknown check type %q", t.Check.Type)
}

// Monitor runs a set of checks and follows changes to it: Update starts
// the checks that are new, stops those that are gone and leaves the others
// running, with their state (up or down, consecutive failures), as
// keepalived does on reload.
type Monitor struct {
	m     Marker
	log   *slog.Logger
	probe func(context.Context, Target) error // Probe; tests script it

	mu      sync.Mutex
	ctx     context.Context // set by Run; nil before, Done after
	running map[Target]context.CancelFunc
	wg      sync.WaitGroup
}

// NewMonitor returns a Monitor that marks servers through m.
func NewMonitor(m Marker, log *slog.Logger) *Monitor {
	return &Monitor{m: m, log: log, probe: Probe, running: map[Target]context.CancelFunc{}}
}

// Update makes targets the checks to run. A target that is the same in
// every field (the server and the check) keeps running; any other change
// is a new check, which starts with the server up. It returns how many
// checks it started and stopped; before Run it only records them.
func (mo *Monitor) Update(targets []Target) (started, stopped int) {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	want := make(map[Target]bool, len(targets))
	for _, t := range targets {
		want[t] = true
	}
	for t, cancel := range mo.running {
		if !want[t] {
			if cancel != nil {
				cancel()
			}
			delete(mo.running, t)
			stopped++
		}
	}
	for t := range want {
		if _, ok := mo.running[t]; !ok {
			mo.running[t] = mo.start(t)
			started++
		}
	}
	return started, stopped
}

// start starts t's loop if Run is running (mo.mu held).
func (mo *Monitor) start(t Target) context.CancelFunc {
	if mo.ctx == nil || mo.ctx.Err() != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(mo.ctx)
	mo.wg.Add(1)
	go func() {
		defer mo.wg.Done()
		watch(ctx, t, mo.m, mo.log, mo.probe)
	}()
	return cancel
}

// Run runs the checks, and those Update adds, until ctx ends.
func (mo *Monitor) Run(ctx context.Context) {
	mo.mu.Lock()
	mo.ctx = ctx
	for t := range mo.running {
		mo.running[t] = mo.start(t)
	}
	mo.mu.Unlock()
	<-ctx.Done()
	mo.wg.Wait()
}

// Run checks every target until ctx ends, marking servers through m and
// logging every change of state.
func Run(ctx context.Context, targets []Target, m Marker, log *slog.Logger) {
	mo := NewMonitor(m, log)
	mo.Update(targets)
	mo.Run(ctx)
}

// watch is one target's loop; probe is injectable for tests.
func watch(ctx context.Context, t Target, m Marker, log *slog.Logger, probe func(context.Context, Target) error) {
	up, failures := true, 0
	tick := time.NewTicker(t.Check.Interval)
	defer tick.Stop()
	for {
		err := probe(ctx, t)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && !up:
			up, failures = true, 0
			if e := m.Mark(t, true); e != nil {
				log.Error("health: marking up", "server", t.Name, "err", e)
			}
			log.Info("real server up again: check passed", "server", t.Name, "check", t.Check.Type, "addr", t.Addr)
		case err == nil:
			failures = 0
		case up:
			failures++
			if failures >= t.Check.Retries {
				up = false
				if e := m.Mark(t, false); e != nil {
					log.Error("health: marking down", "server", t.Name, "err", e)
				}
				how := "removed: its connections end on their next packet"
				if t.Check.Inhibit {
					how = "weight 0: no new connections, open ones continue"
				}
				log.Warn("real server down: "+how, "server", t.Name, "check", t.Check.Type, "addr", t.Addr,
					"failures", failures, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
