package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/drlb/drlb/lab"
)

const labUsage = `usage: drlb lab [flags]            build a DR lab in namespaces, run drlb on it, walk a request
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
	fs.Usage = func() {
		fmt.Fprintln(stderr, labUsage)
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
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
