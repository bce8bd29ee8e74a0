package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/drlb/drlb/testbed"
)

// Run builds the lab, explains and checks its setup, runs the director,
// sends Options.Requests requests through the VIP, walks one of them hop
// by hop from captured packets and tears everything down (unless
// Options.Keep). It returns an error wrapping ErrChecksFailed when any of
// its own checks failed, ErrNotRoot without root.
func Run(ctx context.Context, opts Options, w io.Writer) error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if opts.Name != "" && labExists(opts.Name) {
		return fmt.Errorf("%w: %q (its namespaces %s-* exist).\n"+
			"  look around:  ip netns exec %s-client bash\n"+
			"  remove it:    drlb lab down --name %s\n"+
			"  or build another one beside it with --name OTHER", ErrExists, opts.Name, opts.Name, opts.Name, opts.Name)
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "drlb-lab-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	r := &runner{w: w, o: opts, dir: dir}
	err = r.run(ctx)
	if err != nil && ctx.Err() != nil {
		// Whatever broke first, the cause is the interruption.
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return err
}

// runner is one run of the lab.
type runner struct {
	w   io.Writer
	o   Options
	dir string

	l       *testbed.Lab
	svc     service
	cfgPath string
	logPath string
	dproc   *directorProc
	checks  checks
}

func (r *runner) run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := r.w
	fmt.Fprintln(w, "drlb lab: a throw-away LVS-DR (direct routing) network in network namespaces,")
	fmt.Fprintln(w, "the real drlb director on it, and one request followed packet by packet.")

	l, err := testbed.New(ctx, testbed.Options{RealServers: r.o.RealServers, Name: r.o.Name})
	if errors.Is(err, testbed.ErrNotRoot) {
		return ErrNotRoot
	}
	if err != nil {
		return err
	}
	r.l = l
	kept := false
	defer func() {
		if kept {
			return
		}
		if r.dproc != nil {
			if derr := r.dproc.stop(); derr != nil {
				fmt.Fprintf(w, "stopping the director: %v\n", derr)
			}
		}
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("tearing down the lab: %w", cerr))
			return
		}
		fmt.Fprintf(w, "\nLab %s torn down: director stopped, namespaces %s-* removed.\n", l.Name, l.Name)
	}()
	stop := l.CloseOnSignal(ctx) // Ctrl-C tears down even mid-step
	defer stop()

	if r.o.Keep {
		err = startServers(ctx, l, r.o.Executable, r.dir)
	} else {
		err = l.StartServices(ctx)
	}
	if err != nil {
		return err
	}
	r.svc = service{
		iface: l.Director.Iface, vip: l.VIP, port: testbed.HTTPPort, scheduler: r.o.Scheduler,
		weights: r.o.weights(), client: l.Client.IPv4,
	}
	for _, rs := range l.RealServers {
		r.svc.reals = append(r.svc.reals, rs.IPv4)
	}

	r.topology()
	if err := r.directorSetup(); err != nil {
		return err
	}
	if err := r.realServerSetup(); err != nil {
		return err
	}
	if err := r.doctor(); err != nil {
		return err
	}
	t, err := r.traffic(ctx)
	if err != nil {
		return err
	}
	r.walk(t)
	r.summary(t)
	if r.o.Keep {
		kept = true
		r.keepInstructions()
	}
	if r.checks.failed() {
		return ErrChecksFailed
	}
	return nil
}
