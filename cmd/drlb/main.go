// Command drlb is a Direct Routing (LVS-DR style) load balancer and its tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
)

// Exit statuses, as ARCHITECTURE.md#commands-and-conventions says.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// errUsage marks an error as a usage or configuration error (exit status 2).
var errUsage = errors.New("usage")

// usageErr marks err as a usage or configuration error: main prints it as
// it is and exits with status 2.
type usageErr struct{ error }

func (usageErr) Is(target error) bool { return target == errUsage }
func (e usageErr) Unwrap() error      { return e.error }

// usageError formats a usage error (exit status 2).
func usageError(format string, args ...any) error {
	return usageErr{fmt.Errorf(format, args...)}
}

// asUsage marks an existing error, such as a config error, as a usage error.
func asUsage(err error) error { return usageErr{err} }

// command is one subcommand. Each lives in its own file and registers
// itself in commands.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// linux names what the command needs that only Linux has; "" for a
	// command that runs anywhere (replay, schedule, ctl build for macOS too).
	linux string
	// killable: Ctrl-C and SIGTERM end it at once (their default
	// action), for a command that watches no context and holds nothing
	// to undo. Caught, they would be swallowed until it finished: a
	// doctor pinging 30 dead servers runs 30 s.
	killable bool
}

// commands lists the subcommands that work today; `drlb help` prints them.
func commands() map[string]command {
	return map[string]command{
		"schedule":   {summary: "show how a scheduler places connections (for learning the algorithms)", run: runSchedule, linux: ""},
		"replay":     {summary: "run a pcap through the forwarding pipeline and write what it forwards", run: runReplay, linux: ""},
		"check":      {summary: "check a config file (YAML, ipvsadm rules, keepalived.conf) and print what it would run", run: runCheck, linux: ""},
		"run":        {summary: "run the director on a LAN interface", run: runRun, linux: "AF_PACKET"},
		"ctl":        {summary: "ipvsadm's own commands against a running director (-L -n, -A, -a, -e, -S -n, ...); ctl list", run: runCtl, linux: ""},
		"doctor":     {summary: "check a director or real server setup and print how to fix it", run: runDoctor, linux: "netlink, /proc/sys", killable: true},
		"realserver": {summary: "put the VIP on lo with ARP suppressed on a real server (up), or undo it (down)", run: runRealserver, linux: "netlink, /proc/sys"},
		"lab":        {summary: "build a DR lab in network namespaces, run drlb on it and walk a request hop by hop", run: runLab, linux: "network namespaces, AF_PACKET"},
	}
}

func main() {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	lab := len(os.Args) > 1 && os.Args[1] == "lab"
	if lab {
		// A closed terminal or ssh session tears the lab down too (for
		// run, SIGHUP is a reload, handled there).
		sigs = append(sigs, syscall.SIGHUP)
	}
	if len(os.Args) > 1 && commands()[os.Args[1]].killable {
		sigs = nil
	}
	ctx, stop := context.WithCancel(context.Background())
	if sigs != nil {
		ctx, stop = signal.NotifyContext(ctx, sigs...)
	}
	var stdout io.Writer = os.Stdout
	cancel := func() {}
	if lab {
		// So does a closed pipe on stdout (drlb lab | head): the default
		// SIGPIPE would kill drlb at its next write, with the namespaces,
		// the director and BIRD left running. Ignored, a write returns
		// EPIPE instead, and one to stdout ends the lab; a broken pipe
		// on any other descriptor (a reset connection) is only an error.
		signal.Ignore(syscall.SIGPIPE)
		ctx, cancel = context.WithCancel(ctx)
		stdout = stopOnEPIPE{w: os.Stdout, stop: cancel}
	}
	code := run(ctx, os.Args[1:], stdout, os.Stderr)
	cancel()
	stop()
	os.Exit(code)
}

// stopOnEPIPE is a writer that calls stop when a write finds its reader
// gone (EPIPE).
type stopOnEPIPE struct {
	w    io.Writer
	stop func()
}

func (s stopOnEPIPE) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		s.stop()
	}
	return n, err
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		// A usage error, as an unknown command is: the help goes to
		// stderr (on stdout, drlb | less or $(drlb) took it for output).
		printHelp(stderr, cmds)
		return exitUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout, cmds)
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "drlb: unknown command %q\n", args[0])
		printHelp(stderr, cmds)
		return exitUsage
	}
	err := needsLinux(cmds, args[0], runtime.GOOS)
	if err == nil {
		err = c.run(ctx, args[1:], stdout, stderr)
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "drlb %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "drlb %s: %v\n", args[0], err)
		return exitFailure
	}
}

// needsLinux refuses a Linux-only command (name) on another system (goos)
// before it parses a flag, so a macOS user gets one clear line and exit
// status 1 instead of a failure halfway through.
func needsLinux(cmds map[string]command, name, goos string) error {
	c := cmds[name]
	if c.linux == "" || goos == "linux" {
		return nil
	}
	var anywhere []string
	for n, c := range cmds {
		if c.linux == "" {
			anywhere = append(anywhere, n)
		}
	}
	sort.Strings(anywhere)
	return fmt.Errorf("needs Linux (%s); on %s drlb runs %s", c.linux, goos, strings.Join(anywhere, ", "))
}

func printHelp(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: drlb <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		summary := cmds[n].summary
		if needsLinux(cmds, n, runtime.GOOS) != nil {
			summary += " (Linux only)"
		}
		fmt.Fprintf(w, "  %-11s %s\n", n, summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "run 'drlb <command> -h' for a command's flags")
}

// newFlagSet returns a flag set that reports errors instead of exiting, so
// that bad flags become usage errors with exit status 2.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("drlb "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and maps flag errors to usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return asUsage(err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
