package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/scheduler"
)

const ctlUsage = "usage: drlb ctl list [-stats | -rate | -conns] [-o json] [-s SOCKET]\n" +
	"       drlb ctl [-s SOCKET] IPVSADM-ARGS...   (ipvsadm's own syntax: drlb ctl -L -n; none: -L, as ipvsadm; drlb ctl -h lists it)\n" +
	"       drlb ctl [-s SOCKET] --reload\n" +
	"       drlb ctl [-s SOCKET] bgp [drain | undrain]"

// runCtl is `drlb ctl`: the running director's table, like ipvsadm -Ln
// (list), or ipvsadm's own command line run against it, or a reload.
func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	socket := control.DefaultSocket
	if len(args) >= 2 && args[0] == "-s" {
		socket, args = args[1], args[2:]
		if slices.Contains(scheduler.Names(), socket) && len(args) > 0 && strings.HasPrefix(args[0], "-") {
			return usageError("-s %s: a leading -s names the control socket; give the scheduler after the command: drlb ctl -A -t VIP:PORT -s %s", socket, socket)
		}
	}
	if len(args) == 0 {
		args = []string{"-L"} // plain ipvsadm lists the table
	}
	switch {
	case args[0] == "list":
		return runCtlList(ctx, socket, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "bgp":
		return runCtlBGP(ctx, socket, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "--reload":
		if len(args) > 1 {
			return usageError("--reload takes nothing more, not %q", args[1])
		}
		res, err := control.Reload(ctx, socket)
		return ctlResult(res, err, stdout, stderr)
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprintln(stdout, ctlUsage)
		fmt.Fprint(stdout, "\n"+control.IpvsadmUsage)
		return nil
	case len(args) > 0 && strings.HasPrefix(args[0], "-"):
		// Checked here first, so a bad command is refused (exit 2) even
		// where no director answers; the director checks it again.
		if err := control.CheckIpvsadm(args); err != nil {
			return asUsage(err)
		}
		res, err := control.Ipvsadm(ctx, socket, args)
		return ctlResult(res, err, stdout, stderr)
	}
	return usageError("%s", ctlUsage)
}

// ctlResult prints what the director answered and maps its exit status.
func ctlResult(res control.Result, err error, stdout, stderr io.Writer) error {
	if err != nil {
		return err
	}
	io.WriteString(stdout, res.Output)
	switch res.Exit {
	case exitOK:
		io.WriteString(stderr, res.Error)
		return nil
	case exitUsage:
		return asUsage(errors.New(res.Error))
	}
	return errors.New(res.Error)
}

// runCtlList is `drlb ctl list`: the running director's table, like
// ipvsadm -Ln, in drlb's own format (and JSON).
func runCtlList(ctx context.Context, socket string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl list", stderr)
	fs.StringVar(&socket, "s", socket, "the director's control socket (drlb run -ctl)")
	stats := fs.Bool("stats", false, "counters, like ipvsadm -Ln --stats")
	rate := fs.Bool("rate", false, "rates per second, like ipvsadm -Ln --rate")
	conns := fs.Bool("conns", false, "the connection table, like ipvsadm -Lnc")
	interval := fs.Duration("interval", time.Second, "-rate: time between the two samples")
	output := fs.String("o", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return usageError("-o %q: want text or json", *output)
	}
	if (*stats && *rate) || (*conns && (*stats || *rate)) {
		return usageError("-stats, -rate and -conns do not mix")
	}
	if *interval <= 0 {
		return usageError("-interval %v: must be positive", *interval)
	}
	snap, err := control.Get(ctx, socket, *conns)
	if err != nil {
		return err
	}
	if *output == "json" && !*rate {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(snap)
	}
	switch {
	case *rate:
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(*interval):
		}
		after, err := control.Get(ctx, socket, false)
		if err != nil {
			return err
		}
		if *output == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode([]control.Snapshot{snap, after})
		}
		control.WriteRate(stdout, snap, after)
	case *stats:
		control.WriteStats(stdout, snap)
	case *conns:
		control.WriteConnEntries(stdout, snap)
	default:
		control.WriteList(stdout, snap)
		control.WriteHA(stdout, snap)
		if snap.BGP != nil {
			io.WriteString(stdout, "\n")
			control.WriteBGP(stdout, snap)
		}
	}
	return nil
}
