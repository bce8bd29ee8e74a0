package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/director"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/step"
)

// runRun is `drlb run`: the live director.
func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	holdHUP()
	fs := newFlagSet("run", stderr)
	cfgPath := fs.String("c", "", "config file: drlb YAML, ipvsadm-save rules (ipvsadm -Sn) or keepalived.conf")
	iface := fs.String("i", "", "the director's LAN interface (overrides the config's interface)")
	tcpSvc := fs.String("t", "", "quick start without a file: a TCP service VIP:PORT")
	udpSvc := fs.String("u", "", "quick start without a file: a UDP service VIP:PORT")
	sched := fs.String("s", config.DefaultScheduler, "quick start: scheduler (rr wrr lc wlc sed nq sh mh)")
	persist := fs.String("p", "", "quick start: persistence timeout, in seconds as ipvsadm -p (300) or as a duration (300s, 5m)")
	var reals realFlags
	fs.Var(&reals, "r", "quick start: a real server ADDR[,weight=N][,mac=MAC] (repeatable)")
	trace := fs.Bool("trace", false, "narrate each frame's path through the director (rate-limited)")
	traceRate := fs.Int("trace-rate", 20, "most frames traced per second")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) to this file until drlb stops")
	ctlSocket := fs.String("ctl", control.DefaultSocket, "control socket for drlb ctl and /metrics (\"\" to disable)")
	metrics := fs.String("metrics", "", "also serve Prometheus /metrics on this TCP address, e.g. 127.0.0.1:9469")
	label := fs.String("label", "", "a label for this director, logged with every line (drlb lab tags its directors)")
	blackhole := fs.Bool("blackhole-vip", false, "on a host that must forward: add a blackhole route per VIP (removed on exit) instead of refusing to start")
	ioBackend := fs.String("io", "afpacket", "frame I/O: afpacket, afxdp (XDP redirects VIP frames to AF_XDP sockets, a worker per receive queue; in generic XDP mode, on a VM's NIC whose driver refused native XDP, frames may arrive with partial checksums that AF_XDP forwards unfinished: drlb warns where it can tell) or auto (afxdp on a physical NIC with one receive queue, not kept where frames may arrive with partial checksums, else afpacket; logs why)")
	workers := fs.Int("workers", 0, "data-path workers, each on its own core with its own connection table (0: one per CPU; afxdp: one per receive queue, at most this many)")
	coalesce := fs.Duration("rx-coalesce", 0, "after a small batch, wait this long before reading again (like ethtool -C rx-usecs): less CPU per frame at moderate rates, up to this much added delay (plus the kernel's timer slack, ~70us); 0 reads at once, at most 10ms")
	kernelSYNs := fs.Bool("kernel-syns", false, "under a SYN flood (table pressure) the kernel forwards bare SYNs (IPv4 and IPv6) itself by the stateless hash, so the flood never fills drlb's queues: with -io afpacket the tc program at ingress (not with -keep-kernel-copy or on a VLAN trunk), with -io afxdp the XDP program (XDP_TX: needs XDP_TX on the interface; on a veth in native mode only if its peer has an XDP program, else -xdp-generic)")
	fs.BoolVar(kernelSYNs, "xdp-syn", false, "the same as -kernel-syns")
	kernelFlows := fs.Bool("kernel-flows", false, "the kernel forwards the frames of established flows itself (IPv4 and IPv6), one per flow every 5 s still going to drlb, which decides: with -io afpacket a tc program at ingress (not with -keep-kernel-copy or on a VLAN trunk), with -io afxdp the XDP program (XDP_TX: needs XDP_TX on the interface, as -kernel-syns)")
	fs.BoolVar(kernelFlows, "xdp-flows", false, "the same as -kernel-flows")
	xdpGeneric := fs.Bool("xdp-generic", false, "with -io afxdp: attach the XDP program in generic (SKB) mode even where the driver has native XDP (slower; XDP_TX then works on a veth whose peer has no XDP program)")
	xdpCopy := fs.Bool("xdp-copy", false, "with -io afxdp: AF_XDP sockets in copy mode even where the driver has zero-copy (which the kernel takes by default with the program in driver mode; veth has none)")
	keepCopy := fs.Bool("keep-kernel-copy", false, "leave the kernel its own copy of VIP frames (AF_PACKET, and the VIP frames the XDP program passes with -io afxdp): by default drlb drops it at tc ingress once its sockets have read the frame, since the host's IP stack only throws it away")
	bypass := fs.Bool("qdisc-bypass", false, "send forwarded frames straight to the driver: faster, but tcpdump on the director no longer sees them and tc shaping is skipped")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drlb run -c CONFIG [-i IFACE] [-trace]")
		fmt.Fprintln(stderr, "       drlb run -i IFACE -t VIP:PORT [-s SCHED] -r ADDR[,weight=N][,mac=MAC] ...")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError("-log-level %q: want debug, info, warn or error", *logLevel)
	}
	if *cfgPath != "" {
		// -s and -p have defaults, so runConfig cannot tell them given.
		var quick []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "s" || f.Name == "p" {
				quick = append(quick, "-"+f.Name)
			}
		})
		if len(quick) > 0 {
			return usageError("%s: a quick-start flag, which -c does not take: the file sets each service's scheduler and persistence", strings.Join(quick, " "))
		}
	}
	cfg, err := runConfig(*cfgPath, *tcpSvc, *udpSvc, *sched, *persist, reals, stderr)
	if err != nil {
		return err
	}
	if err := setInterface(cfg, *iface, *cfgPath); err != nil {
		return err
	}
	if cfg.Interface == "" {
		return usageError("no interface: give -i IFACE or interface: in the config")
	}
	hopts := &slog.HandlerOptions{Level: level}
	if underJournald() {
		// journald stamps each line; a second time stamp is noise there.
		hopts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, hopts))
	if *label != "" {
		log = log.With("label", *label)
	}
	switch *ioBackend {
	case "afpacket", "afxdp", "auto":
	default:
		return usageError("-io %q: want afpacket, afxdp or auto", *ioBackend)
	}
	if *workers < 0 || *workers > forwarder.MaxWorkers {
		return usageError("-workers %d: want 0 (one per CPU) to %d", *workers, forwarder.MaxWorkers)
	}
	if *coalesce < 0 || *coalesce > director.MaxRxCoalesce {
		return usageError("-rx-coalesce %v: want 0 to %v", *coalesce, director.MaxRxCoalesce)
	}
	if *ioBackend == "afpacket" {
		// Said explicitly, -io afpacket opens no XDP program and no
		// AF_XDP socket: an XDP flag beside it is a contradiction, not
		// something to warn about once the director is up (-io auto may
		// still fall back to AF_PACKET, and warns there).
		var xdp []string
		fs.Visit(func(f *flag.Flag) {
			if (f.Name == "xdp-generic" || f.Name == "xdp-copy") && f.Value.String() == "true" {
				xdp = append(xdp, "-"+f.Name)
			}
		})
		if len(xdp) > 0 {
			return usageError("%s: needs -io afxdp (or auto), not -io afpacket", strings.Join(xdp, " "))
		}
	}
	if *traceRate < 1 {
		// It was silently replaced by 20: -trace-rate 0 (meaning "none"?)
		// or -5 traced 20 frames a second.
		return usageError("-trace-rate %d: want at least 1 frame per second", *traceRate)
	}
	if *metrics != "" {
		// Checked here, not when the director listens: there a missing
		// port failed with exit 1, after the sockets and BGP had started,
		// and without naming the flag.
		if err := checkListenAddr(*metrics); err != nil {
			return usageError("-metrics %q: %v (want HOST:PORT, e.g. 127.0.0.1:9469, or :9469)", *metrics, err)
		}
	}
	opts := director.Options{Logger: log, QdiscBypass: *bypass, BlackholeVIPs: *blackhole, IO: *ioBackend, Workers: *workers, RxCoalesce: *coalesce, KeepKernelCopy: *keepCopy, KernelSYNs: *kernelSYNs, KernelFlows: *kernelFlows, XDPGeneric: *xdpGeneric, XDPCopy: *xdpCopy,
		ControlSocket: *ctlSocket, MetricsAddr: *metrics}
	if *trace {
		opts.Trace = step.NewNarrator(stdout, cfg, step.NarratorOptions{PerSecond: *traceRate, Prefix: "trace: "})
	}
	sd := newSDNotifier(log)
	opts.Ready, opts.Reloaded = sd.ready, sd.reloaded
	go func() { <-ctx.Done(); sd.stopping() }()
	if *cfgPath != "" {
		opts.Reload = reloadOnHUP(ctx, *cfgPath, *iface, sd)
		opts.ReloadConfig = func() (*config.Config, error) {
			// drlb ctl --reload (the unit's ExecReload): the director
			// calls this as the reload begins, under its Apply lock, and
			// Reloaded at its end, so systemd hears RELOADING=1 then
			// READY=1 as on SIGHUP.
			sd.reloading()
			return loadForReload(*cfgPath, *iface)
		}
	} else {
		ignoreHUP(ctx, log)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return director.Run(ctx, cfg, opts)
}

// checkListenAddr accepts what net.Listen("tcp", addr) takes as a
// listening address: HOST:PORT, the host empty or an IP address or name,
// the port a number 0..65535 or a service name.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if port == "" {
		return fmt.Errorf("missing port")
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// holdHUP keeps SIGHUP from killing drlb run for the whole of its life:
// before onHUP is set up (while the config loads) and after its context
// ends (the grace periods of BGP and VRRP, the teardown). The signal's
// default action would end the process there and then, cutting the flows
// a grace period carries and leaving the blackhole routes and XDP
// programs in place; kill -HUP is README's reload recipe, and a closed
// terminal sends it too. The channel is never read: a signal held here is
// dropped, and onHUP's own channel still gets every one while it listens.
func holdHUP() { signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP) }

// ignoreHUP catches SIGHUP for a director started without a file (-t, -u,
// -r): there is nothing to re-read, and the signal's default action
// would kill it at once, with its connection table and without undoing
// what it set up (blackhole routes, XDP programs).
func ignoreHUP(ctx context.Context, log *slog.Logger) {
	onHUP(ctx, func(context.Context) {
		log.Warn("SIGHUP: nothing to reload (started without -c); drlb ctl changes the running configuration")
	})
}

// reloadOnHUP re-reads the config file on SIGHUP, as keepalived does: it
// tells systemd a reload began and hands the director the file's loader,
// which the director calls under its Apply lock (Director.Reload), so a
// read older than a drlb ctl --reload's is never applied after it. The
// director logs a refusal (a file's file:line:column) and reports the
// end to systemd (Options.Reloaded).
func reloadOnHUP(ctx context.Context, path, iface string, sd sdNotifier) <-chan func() (*config.Config, error) {
	out := make(chan func() (*config.Config, error))
	load := func() (*config.Config, error) { return loadForReload(path, iface) }
	onHUP(ctx, func(ctx context.Context) {
		sd.reloading()
		select {
		case out <- load:
		case <-ctx.Done():
		}
	})
	return out
}

// onHUP calls fn, one call at a time, for every SIGHUP until ctx ends.
func onHUP(ctx context.Context, fn func(context.Context)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				fn(ctx)
			}
		}
	}()
}

// loadForReload re-reads the config file as SIGHUP and drlb ctl --reload
// do: -i, if given, still overrides its interface.
func loadForReload(path, iface string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := setInterface(cfg, iface, path); err != nil {
		return nil, err
	}
	return cfg, nil
}

// setInterface applies -i (when given) to cfg: it overrides a YAML
// interface:, but not the interface of a keepalived.conf's vrrp_instance,
// which must be the same: drlb sends its adverts where it answers ARP.
func setInterface(cfg *config.Config, iface, path string) error {
	if iface == "" {
		return nil
	}
	if h := cfg.HA; h != nil && h.Interface != "" && h.Interface != iface {
		return usageError("-i %s: %s:%d: the vrrp_instance runs on interface %s: give -i %s or leave -i out", iface, path, h.Line, h.Interface, h.Interface)
	}
	cfg.Interface = iface
	delete(cfg.Lines, "interface") // -i's, not the file's
	return nil
}

// runConfig loads the file, or builds one service from the quick-start flags.
// Warnings about the file go to stderr.
func runConfig(path, tcpSvc, udpSvc, sched, persist string, reals realFlags, stderr io.Writer) (*config.Config, error) {
	quick := tcpSvc != "" || udpSvc != "" || len(reals) > 0
	switch {
	case path != "" && quick:
		return nil, usageError("-c and the quick-start flags (-t/-u/-r) do not mix")
	case path != "":
		cfg, _, err := loadConfig(path, stderr)
		return cfg, err
	case !quick:
		return nil, usageError("give -c CONFIG, or -t/-u VIP:PORT with -r real servers")
	case (tcpSvc == "") == (udpSvc == ""):
		return nil, usageError("quick start takes exactly one of -t or -u")
	case len(reals) == 0:
		return nil, usageError("quick start needs at least one -r real server")
	}
	// Say it in ipvsadm's words and let the config package check it, so
	// quick start and files give the same errors.
	proto, svc := "-t", tcpSvc
	if udpSvc != "" {
		proto, svc = "-u", udpSvc
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-A %s %s -s %s", proto, svc, sched)
	if persist != "" {
		// Seconds as ipvsadm takes them (300), or a duration in whole
		// seconds (300s, 5m), as the flag's help offers.
		secs := persist
		if d, err := time.ParseDuration(persist); err == nil && d > 0 && d%time.Second == 0 {
			secs = strconv.FormatInt(int64(d/time.Second), 10)
		}
		fmt.Fprintf(&b, " -p %s", secs)
	}
	b.WriteString("\n")
	for _, r := range reals {
		fmt.Fprintf(&b, "-a %s %s -r %s -g -w %d\n", proto, svc, hostOnly(r.addr), r.weight)
	}
	cfg, err := config.Parse("command line", []byte(b.String()))
	if err != nil {
		return nil, asUsage(err)
	}
	for i, r := range reals {
		cfg.Services[0].RealServers[i].MAC = r.mac // checked as a file's are, by realFlags.Set (config.MACProblem)
	}
	return cfg, nil
}

func hostOnly(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// realFlags collects -r ADDR[,weight=N][,mac=MAC].
type realFlags []realFlag

type realFlag struct {
	addr   netip.Addr
	weight int
	mac    net.HardwareAddr
}

func (r *realFlags) String() string { return "" }

func (r *realFlags) Set(v string) error {
	parts := strings.Split(v, ",")
	a, err := netip.ParseAddr(strings.Trim(parts[0], "[]"))
	if err != nil {
		return fmt.Errorf("real server %q: %q is not an IP address", v, parts[0])
	}
	rf := realFlag{addr: a, weight: config.DefaultWeight}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(p, "=")
		switch k {
		case "weight", "w":
			w, err := strconv.Atoi(val)
			if err != nil || w < 0 || w > 65535 {
				return fmt.Errorf("real server %q: weight %q must be 0..65535", v, val)
			}
			rf.weight = w
		case "mac":
			m, err := net.ParseMAC(val)
			if err != nil || len(m) != 6 {
				return fmt.Errorf("real server %q: %q is not an Ethernet MAC address", v, val)
			}
			if msg := config.MACProblem(m); msg != "" {
				return fmt.Errorf("real server %q: mac %s %s", v, m, msg)
			}
			rf.mac = m
		default:
			return fmt.Errorf("real server %q: unknown option %q (want weight=N or mac=MAC)", v, k)
		}
	}
	*r = append(*r, rf)
	return nil
}
