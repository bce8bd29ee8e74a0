package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/drlb/drlb/realserver"
)

const realserverUsage = `usage: drlb realserver up|down --vip VIP [--iface IF] [--state FILE]

up   puts VIP/32 (/128) on lo and, for IPv4, sets arp_ignore=1 and arp_announce=2
     on "all" and on IF, saving the previous values in the state file
down restores what up found (removes the VIP only if up added it; with no
     state file it removes the VIP from lo and leaves the sysctls alone)

Each step is printed as the command an operator would type.`

// runRealserver is `drlb realserver`, acting on this host.
func runRealserver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return realserverCmd(args, stdout, stderr, func() (realserver.System, error) {
		if os.Geteuid() != 0 {
			return nil, errors.New("root is needed to change addresses and sysctls (run with sudo)")
		}
		return realserver.NewSystem("/proc/sys", nil), nil
	})
}

// realserverCmd parses args and runs up or down on the System newSys
// returns; tests pass a fake.
func realserverCmd(args []string, stdout, stderr io.Writer, newSys func() (realserver.System, error)) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, realserverUsage)
		return usageError("missing action: want up or down")
	}
	action := args[0]
	var op func(realserver.System, realserver.Config) ([]realserver.Step, error)
	switch action {
	case "up":
		op = realserver.Up
	case "down":
		op = realserver.Down
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, realserverUsage)
		return nil
	default:
		fmt.Fprintln(stderr, realserverUsage)
		return usageError("unknown action %q: want up or down", action)
	}
	fs := newFlagSet("realserver "+action, stderr)
	vip := fs.String("vip", "", "virtual IP address (IPv4 or IPv6), required")
	iface := fs.String("iface", "", "LAN interface facing the director (optional; up only: down acts on what the state file names)")
	state := fs.String("state", "", "state file (default /run/drlb/realserver-<vip>.json)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *vip == "" {
		return usageError("--vip is required")
	}
	addr, err := netip.ParseAddr(*vip)
	if err != nil {
		return usageError("--vip %q is not an IP address", *vip)
	}
	sys, err := newSys()
	if err != nil {
		return err
	}
	steps, err := op(sys, realserver.Config{VIP: addr, Iface: *iface, StateFile: *state})
	for _, s := range steps {
		fmt.Fprintln(stdout, s)
	}
	if errors.Is(err, realserver.ErrConfig) {
		return usageError("%v", err)
	}
	return err
}
