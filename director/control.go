package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/control"
)

// serveControl opens the control socket (and the metrics port) and serves
// them until ctx ends or stop is called; stop returns once both are shut
// down, the requests in flight ended (Run calls it before it tears down
// what a ctl change could touch: blackhole routes, the tc drop). Another
// live drlb on the same socket is not fatal: this one runs without a
// socket and says so. On an error nothing is left serving.
func serveControl(ctx context.Context, d *Director, opts Options, log *slog.Logger) (stop func(), err error) {
	take := opts.bgp.snapshot(d.Snapshot)
	h := control.Handler(take, d, reloadFunc(d, opts.ReloadConfig))
	drain := func(bool) error {
		return errors.New("this director runs without bgp: in its configuration: it announces nothing by BGP, so there is nothing to drain")
	}
	if opts.bgp != nil {
		drain = opts.bgp.an.Drain
	}
	h = control.WithBGP(h, drain) // drlb ctl bgp is refused clearly without bgp:, not a 404
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() {
		cancel()
		wg.Wait()
	}
	serve := func(what string, ln net.Listener, h http.Handler) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := control.Serve(ctx, ln, h); err != nil {
				log.Error(what, "err", err)
			}
		}()
	}
	if opts.ControlSocket != "" {
		ln, err := control.Listen(opts.ControlSocket)
		switch {
		case errors.Is(err, control.ErrInUse):
			log.Warn("control socket taken: drlb ctl will not see this director", "err", err)
		case err != nil:
			return nil, err
		default:
			log.Info("control socket", "path", opts.ControlSocket)
			serve("control socket", ln, h)
		}
	}
	if opts.MetricsAddr != "" {
		ln, err := net.Listen("tcp", opts.MetricsAddr)
		if err != nil {
			stop() // the control socket must not answer for a director that did not start
			return nil, fmt.Errorf("director: metrics: %w", err)
		}
		log.Info("Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
		serve("metrics", ln, control.MetricsHandler(take))
	}
	return stop, nil
}

// reloadFunc is what `drlb ctl --reload` runs: re-read the config file, as
// SIGHUP does, and apply it whole or not at all (nil without a file). The
// file is read under the Apply lock (Director.Reload): a SIGHUP's read
// cannot be applied after this newer one, nor the reverse.
func reloadFunc(d *Director, load func() (*config.Config, error)) func() error {
	if load == nil {
		return nil
	}
	return func() error {
		err := d.Reload(load)
		if err == nil {
			d.log.Info("configuration reloaded (drlb ctl --reload)")
		}
		// The systemd unit's ExecReload is drlb ctl --reload: systemd
		// must get READY=1 and the STATUS line (applied or refused) from
		// this path as from SIGHUP's, or `systemctl status` kept saying
		// what an older reload did.
		if d.reloaded != nil {
			d.reloaded(err)
		}
		return err
	}
}
