package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/control"
)

// serveControl opens the control socket (and the metrics port) and serves
// them until ctx ends. Another live drlb on the same socket is not fatal:
// this one runs without a socket and says so.
func serveControl(ctx context.Context, d *Director, opts Options, log *slog.Logger) error {
	take := opts.bgp.snapshot(d.Snapshot)
	h := control.Handler(take, d, reloadFunc(d, opts.ReloadConfig))
	if opts.bgp != nil {
		h = control.WithBGP(h, opts.bgp.an.Drain)
	}
	if opts.ControlSocket != "" {
		ln, err := control.Listen(opts.ControlSocket)
		switch {
		case errors.Is(err, control.ErrInUse):
			log.Warn("control socket taken: drlb ctl will not see this director", "err", err)
		case err != nil:
			return err
		default:
			log.Info("control socket", "path", opts.ControlSocket)
			go func() {
				if err := control.Serve(ctx, ln, h); err != nil {
					log.Error("control socket", "err", err)
				}
			}()
		}
	}
	if opts.MetricsAddr != "" {
		ln, err := net.Listen("tcp", opts.MetricsAddr)
		if err != nil {
			return fmt.Errorf("director: metrics: %w", err)
		}
		log.Info("Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
		go func() {
			if err := control.Serve(ctx, ln, control.MetricsHandler(take)); err != nil {
				log.Error("metrics", "err", err)
			}
		}()
	}
	return nil
}

// reloadFunc is what `drlb ctl --reload` runs: re-read the config file, as
// SIGHUP does, and apply it whole or not at all (nil without a file).
func reloadFunc(d *Director, load func() (*config.Config, error)) func() error {
	if load == nil {
		return nil
	}
	return func() error {
		cfg, err := load()
		if err != nil {
			return err
		}
		if err := d.Apply(cfg); err != nil {
			return err
		}
		d.log.Info("configuration reloaded (drlb ctl --reload)")
		return nil
	}
}
