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

// Target is one real server of one service to check.
type Target struct {
	Service, Real int
	Name          string         // for logs: "tcp 198.18.0.100:80 -> 198.18.0.11"
	Addr          netip.AddrPort // where the probe goes: the real server's own address
	Check         config.Check
}

// Marker applies a verdict to real server ri of service svc (indexes, as in
// Target); forwarder.Forwarder implements it.
type Marker interface {
	SetAvailable(svc, ri int, up bool) error
	// SetInhibited quiesces a server (weight 0) without forgetting its
	// configured weight.
	SetInhibited(svc, ri int, inhibited bool) error
}

// Targets lists the checks of cfg. A check without a port probes the
// service port; a port-0 (every port) service needs check.port.
func Targets(cfg *config.Config) ([]Target, error) {
	var out []Target
	for i, s := range cfg.Services {
		for j, r := range s.RealServers {
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
				Service: i, Real: j, Check: *r.Check,
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

// Run checks every target until ctx ends, marking servers through m and
// logging every change of state.
func Run(ctx context.Context, targets []Target, m Marker, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watch(ctx, t, m, log, Probe)
		}()
	}
	wg.Wait()
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
			if e := mark(m, t, true); e != nil {
				log.Error("health: marking up", "server", t.Name, "err", e)
			}
			log.Info("real server up again: check passed", "server", t.Name, "check", t.Check.Type, "addr", t.Addr)
		case err == nil:
			failures = 0
		case up:
			failures++
			if failures >= t.Check.Retries {
				up = false
				if e := mark(m, t, false); e != nil {
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

func mark(m Marker, t Target, up bool) error {
	if t.Check.Inhibit {
		return m.SetInhibited(t.Service, t.Real, !up)
	}
	return m.SetAvailable(t.Service, t.Real, up)
}
