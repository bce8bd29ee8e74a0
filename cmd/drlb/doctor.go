package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/doctor"
)

// errChecksFailed makes `drlb doctor` exit 1 after printing its table.
var errChecksFailed = errors.New("some checks failed (see the fix under each)")

// runDoctor is `drlb doctor`: checks a director or a real server.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("doctor", stderr)
	role := fs.String("role", "director", "director or realserver")
	cfgPath := fs.String("c", "", "config file: the VIPs (and the director's interface) to check")
	iface := fs.String("iface", "", "the LAN interface (default: the config's interface for a director)")
	var vips addrList
	fs.Var(&vips, "vip", "a VIP to check (repeatable; default: the config's VIPs)")
	var dirAddrs addrList
	fs.Var(&dirAddrs, "director", "realserver: a director's address, to check the default gateway is not it (repeatable: several directors with BGP)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: drlb doctor -c CONFIG                                          (a director)\n"+
			"       drlb doctor -role realserver -iface IF -vip VIP [-director ADDR]   (a real server)")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *role != "director" && *role != "realserver" { // before what depends on it
		return usageError("-role %q: want director or realserver", *role)
	}
	var reals []netip.Addr
	var peers []netip.AddrPort // with bgp:, the routers the VIPs are announced to
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return asUsage(err)
		}
		if *iface == "" && *role == "director" {
			*iface = cfg.Interface
		}
		if len(vips) == 0 {
			vips = cfg.VIPs()
		}
		reals = cfg.RealServerAddrs()
		if cfg.BGP != nil {
			for _, p := range cfg.BGP.Peers {
				port := p.Port
				if port == 0 {
					port = config.DefaultBGPPort
				}
				peers = append(peers, netip.AddrPortFrom(p.Address, port))
			}
		}
	}
	if *iface == "" {
		return usageError("no interface: give -iface IF (or -c CONFIG with interface: for a director)")
	}
	if len(vips) == 0 {
		return usageError("no VIP: give -vip VIP or -c CONFIG")
	}
	var report doctor.Report
	switch *role {
	case "director":
		report = doctor.Director(doctor.System{}, *iface, vips, reals...)
		report = append(report, doctor.Reachability(doctor.System{}, *iface, reals, time.Second)...)
		if peers != nil {
			report = append(report, doctor.BGP(doctor.System{}, *iface, vips, peers, time.Second)...)
		}
	case "realserver":
		report = doctor.RealServer(doctor.System{}, *iface, vips, dirAddrs...)
	default:
		return usageError("-role %q: want director or realserver", *role)
	}
	fmt.Fprintf(stdout, "drlb doctor: %s on %s for %v\n\n", *role, *iface, []netip.Addr(vips))
	report.Print(stdout)
	if report.Failed() {
		return errChecksFailed
	}
	return nil
}

// addrList collects repeated IP address flags.
type addrList []netip.Addr

func (a *addrList) String() string { return fmt.Sprint([]netip.Addr(*a)) }

func (a *addrList) Set(v string) error {
	ip, err := netip.ParseAddr(v)
	if err != nil {
		return fmt.Errorf("%q is not an IP address", v)
	}
	*a = append(*a, ip)
	return nil
}
