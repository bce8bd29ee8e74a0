package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/drlb/drlb/control"
)

// runCtl is `drlb ctl list`: the running director's table, like ipvsadm -Ln.
func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return usageError("usage: drlb ctl list [-stats | -rate] [-o json] [-s SOCKET]")
	}
	fs := newFlagSet("ctl list", stderr)
	socket := fs.String("s", control.DefaultSocket, "the director's control socket (drlb run -ctl)")
	stats := fs.Bool("stats", false, "counters, like ipvsadm -Ln --stats")
	rate := fs.Bool("rate", false, "rates per second, like ipvsadm -Ln --rate")
	conns := fs.Bool("conns", false, "the connection table, like ipvsadm -Lnc")
	interval := fs.Duration("interval", time.Second, "-rate: time between the two samples")
	output := fs.String("o", "text", "text or json")
	if err := parseFlags(fs, args[1:]); err != nil {
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
	snap, err := control.Get(ctx, *socket, *conns)
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
		after, err := control.Get(ctx, *socket, false)
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
	}
	return nil
}
