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
	if sc := scenarioNamed(opts.Scenario); sc != nil && sc.BGP {
		if _, err := testbed.FindBIRD(); err != nil {
			return fmt.Errorf("--scenario %s: %w", sc.Name, err)
		}
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

// runner is one run of the lab: the walkthrough or a scenario.
type runner struct {
	w   io.Writer
	o   Options
	dir string

	l       *testbed.Lab
	svc     service
	cfgPath string
	// logPath is the running (or last) director's log, logs every one's.
	logPath string
	logs    []string
	dproc   *directorProc
	checks  checks
	// sections numbers the headings as they are printed.
	sections int
	// pcaps lists the files saved so far, pcapsWanted how many should be.
	pcaps       []savedPcap
	pcapsWanted int
	// captureLost counts the frames the saved captures missed.
	captureLost int
	// page collects the HTML page's drawings as the run goes.
	page page
	// atEnd stops what a scenario started besides the director (another
	// director, BIRD), last first, before the lab is torn down, whatever
	// happened.
	atEnd []func() error
}

// section starts the next numbered section of the output.
func (r *runner) section(title string) {
	r.sections++
	heading(r.w, r.sections, title)
}

func (r *runner) run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := r.w
	sc := scenarioNamed(r.o.Scenario)
	if sc == nil {
		fmt.Fprintln(w, "drlb lab: a throw-away LVS-DR (direct routing) network in network namespaces,")
		fmt.Fprintln(w, "the real drlb director on it, and one request followed packet by packet.")
		r.page.title = "drlb lab: one request through an LVS-DR director"
	} else {
		fmt.Fprintf(w, "drlb lab --scenario %s: %s.\n", sc.Name, sc.Title)
		fmt.Fprintln(w, "A throw-away LVS-DR network in network namespaces, the real drlb director on it,")
		fmt.Fprintln(w, "the trap provoked, shown with captured packets, diagnosed and fixed.")
		r.page.title = "drlb lab --scenario " + sc.Name + ": " + sc.Title
	}

	to := testbed.Options{RealServers: r.o.RealServers, Name: r.o.Name}
	if sc != nil {
		to.Directors, to.RoutedVIP = sc.Directors, sc.BGP
	}
	l, err := testbed.New(ctx, to)
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
		if derr := r.stopDirector(); derr != nil {
			fmt.Fprintf(w, "stopping the director: %v\n", derr)
		}
		for i := len(r.atEnd) - 1; i >= 0; i-- {
			if aerr := r.atEnd[i](); aerr != nil {
				fmt.Fprintf(w, "%v\n", aerr)
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
		var stopServers func() error
		stopServers, err = startServers(ctx, l, r.o.Executable, r.dir)
		if err == nil {
			// Run only if the lab is torn down after all.
			r.atEnd = append(r.atEnd, stopServers)
		}
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

	if sc == nil {
		err = r.walkthrough(ctx)
	} else {
		err = scenarioRuns[sc.Name](r, ctx)
	}
	if err != nil {
		return err
	}
	if r.o.HTML != "" {
		if err := r.writeHTML(); err != nil {
			return err
		}
	}
	if r.o.Keep {
		kept = true
		r.keepInstructions()
	}
	if r.checks.failed() {
		return ErrChecksFailed
	}
	return nil
}

// walkthrough is the lab without a scenario: set up, explain, check, send
// requests and walk one hop by hop.
func (r *runner) walkthrough(ctx context.Context) error {
	r.topology(nil)
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
	return nil
}
