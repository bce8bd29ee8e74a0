package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/drlb/drlb/lab"
)

const labUsage = `usage: drlb lab [flags]            build a DR lab in namespaces, run drlb on it, walk a request
       drlb lab --scenario NAME     provoke one DR trap in a lab of its own, show it, fix it
       drlb lab --list-scenarios    the scenarios
       drlb lab down [--name NAME]  remove a lab kept with --keep (default name ` + lab.KeepName + `)

Needs root (network namespaces). Nothing outside the lab's own namespaces is touched.
It exits 1 if any of its own checks failed, so it doubles as a self-test.`

// runLab is `drlb lab`: the one-command lab and packet-flow walkthrough.
func runLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return labCmd(ctx, args, stdout, stderr, os.Geteuid)
}

// labCmd is runLab with the user id injectable, so the non-root message is
// testable as root.
func labCmd(ctx context.Context, args []string, stdout, stderr io.Writer, geteuid func() int) error {
	if len(args) > 0 {
		switch args[0] {
		case "down":
			return labDown(args[1:], stdout, stderr, geteuid)
		case "serve":
			return labServe(ctx, args[1:], stderr)
		}
	}
	fs := newFlagSet("lab", stderr)
	var o lab.Options
	fs.StringVar(&o.Scheduler, "scheduler", lab.DefaultScheduler, "rr, or wrr with weights N..1 (3:2:1 for 3 real servers)")
	fs.IntVar(&o.RealServers, "realservers", lab.DefaultRealServers, "number of real servers")
	fs.IntVar(&o.Requests, "requests", lab.DefaultRequests, "HTTP requests to send through the VIP")
	fs.BoolVar(&o.Keep, "keep", false, "leave the lab, the director and the web servers running (remove with drlb lab down)")
	fs.StringVar(&o.Name, "name", "", "lab name, the namespaces' prefix (default: unique per run, "+lab.KeepName+" with --keep)")
	fs.StringVar(&o.Dir, "pcap-dir", "", "where to save the pcaps, the director's config and log (default: a new temporary directory)")
	fs.BoolVar(&o.Trace, "trace", false, "run the director with -trace and show its narration of the walked request")
	fs.StringVar(&o.Scenario, "scenario", "", "run one DR trap instead of the walkthrough (see --list-scenarios)")
	list := fs.Bool("list-scenarios", false, "list the scenarios and exit")
	fs.StringVar(&o.HTML, "html", "", "also write the run as one self-contained HTML page with drawings to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, labUsage)
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *list {
		listScenarios(stdout)
		return nil
	}
	if o.Scenario != "" {
		known := false
		var names []string
		for _, sc := range lab.Scenarios() {
			known = known || sc.Name == o.Scenario
			names = append(names, sc.Name)
		}
		if !known {
			return usageError("--scenario %q: want one of %s (drlb lab --list-scenarios)", o.Scenario, strings.Join(names, ", "))
		}
		// A scenario builds the lab it needs.
		var clash []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "scheduler", "realservers", "requests", "keep", "trace":
				clash = append(clash, "--"+f.Name)
			}
		})
		if len(clash) > 0 {
			return usageError("--scenario builds its own lab: drop %s", strings.Join(clash, ", "))
		}
	}
	if geteuid() != 0 {
		return lab.ErrNotRoot
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the drlb executable to run as the director: %w", err)
	}
	o.Executable = exe
	err = lab.Run(ctx, o, stdout)
	if errors.Is(err, lab.ErrOptions) || errors.Is(err, lab.ErrExists) {
		return asUsage(err)
	}
	return err
}

// listScenarios is `drlb lab --list-scenarios`.
func listScenarios(w io.Writer) {
	fmt.Fprintln(w, "drlb lab --scenario NAME provokes one DR trap in a throw-away lab, shows it with")
	fmt.Fprintln(w, "captured packets, diagnoses and fixes it; exit 0 when it showed what it claims.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, sc := range lab.Scenarios() {
		fmt.Fprintf(tw, "  %s\t%s\n", sc.Name, sc.Title)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, sc := range lab.Scenarios() {
		fmt.Fprintf(w, "%s: %s.\n", sc.Name, sc.Shows)
	}
}

// labDown is `drlb lab down`.
func labDown(args []string, stdout, stderr io.Writer, geteuid func() int) error {
	fs := newFlagSet("lab down", stderr)
	name := fs.String("name", lab.KeepName, "the lab to remove")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if geteuid() != 0 {
		return lab.ErrNotRoot
	}
	return lab.Down(*name, stdout)
}

// labServe is `drlb lab serve`: a kept lab's web server and UDP echo, run
// by drlb lab itself inside each real server's namespace.
func labServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("lab serve", stderr)
	name := fs.String("name", "", "the real server's name, sent in every answer")
	var addrs addrList
	fs.Var(&addrs, "addr", "an address to serve on (repeatable)")
	fs.String("lab", "", "the lab this server belongs to (lets drlb lab down find it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || len(addrs) == 0 {
		return usageError("serve needs -name and at least one -addr")
	}
	return lab.Serve(ctx, *name, []netip.Addr(addrs))
}
