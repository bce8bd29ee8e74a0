package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drlb/drlb/config"
)

// `drlb ctl` with ipvsadm's own command line: the director runs it and
// answers what ipvsadm would have printed. Changes go through
// config.EditIpvsadm and Editor.Apply: checked whole, applied whole or not
// at all.

// Editor is what ipvsadm's commands act on: the director's running
// configuration and its counters. *director.Director is one.
type Editor interface {
	// Config returns a deep copy of the running configuration.
	Config() *config.Config
	// Apply validates cfg whole and applies all of it or nothing,
	// keeping connections.
	Apply(cfg *config.Config) error
	// Edit applies what edit makes of a copy of the running
	// configuration, as Apply does, with no other Apply in between;
	// edit's error is returned as is.
	Edit(edit func(*config.Config) (*config.Config, error)) error
	// ZeroCounters zeroes the counters of every service as the listings
	// show them (ipvsadm -Z); /metrics keeps them monotonic.
	ZeroCounters()
	// ZeroService zeroes those of one service and its real servers
	// (ipvsadm -Z -t|-u VIP:PORT); false if there is no such service.
	ZeroService(proto config.Protocol, vip netip.AddrPort) bool
}

// Result is the answer to an ipvsadm command line (POST /v1/ipvsadm) or a
// reload (POST /v1/reload): what to print on standard output, what on
// standard error, and the exit status (0 done, 1 failed, 2 refused: bad
// syntax, or a change that was not applied).
type Result struct {
	Output string `json:"output"`
	Error  string `json:"error,omitempty"`
	Exit   int    `json:"exit"`
}

// Exit statuses of a Result, as drlb's (ARCHITECTURE.md#commands-and-conventions).
const (
	exitOK      = 0
	exitFailure = 1
	exitRefused = 2
)

func refused(err error) Result { return Result{Error: err.Error(), Exit: exitRefused} }

// IpvsadmVersion is the IPVS version `drlb ctl -L` claims, the one whose
// semantics drlb follows (and today's kernels report).
const IpvsadmVersion = "1.2.1"

// listOptions are the options of -L, -S and -Z.
type listOptions struct {
	numeric, conns, exact, nosort        bool
	stats, rate, thresholds, persistConn bool
	tunInfo                              bool // --tun-info (ipvsadm 1.31): the Forward and TunnelInfo columns
	timeout, daemon                      bool
	service                              *serviceKey // -L -t VIP:PORT: that service alone
}

type serviceKey struct {
	protocol string // tcp, udp
	addr     netip.AddrPort
	proto    config.Protocol // protocol's
}

// command is a parsed ipvsadm command line.
type command struct {
	name string   // -A ... -C (changes), -L, -S, -Z, -h, -v
	args []string // a change's whole command line, for EditIpvsadm
	list listOptions
}

// isChange reports whether name is a command that changes the table.
func isChange(name string) bool {
	switch name {
	case "-A", "-E", "-D", "-a", "-e", "-d", "-C":
		return true
	}
	return false
}

// CheckIpvsadm checks an ipvsadm command line as far as it can without a
// director: syntax, values, and what drlb does not do. `drlb ctl` calls
// it before it asks the director, so that a bad command is refused (exit
// status 2) even where no director runs. The error names the option and
// value.
func CheckIpvsadm(args []string) error {
	_, err := parseCommand(args)
	return err
}

func parseCommand(args []string) (command, error) {
	a, err := config.SplitIpvsadm(args)
	if err != nil {
		return command{}, err
	}
	c := command{name: a.Command}
	switch {
	case isChange(a.Command):
		c.args = args
		return c, config.CheckIpvsadm(args)
	case a.Command == "-L":
		return c, c.list.parseList(a.Options)
	case a.Command == "-S":
		return c, c.list.parseOnly("-S", a.Options, "n")
	case a.Command == "-Z":
		return c, c.list.parseOnly("-Z", a.Options)
	case a.Command == "-h" || a.Command == "-v":
		return c, c.list.parseOnly(a.Command, a.Options)
	case a.Command == "-R":
		return c, errors.New("-R: drlb ctl runs one command at a time: give the rules to drlb run -c FILE, or run each line as drlb ctl LINE")
	case a.Command == "--set":
		return c, errors.New("--set: drlb's connection timeouts are in its config file (timeouts:): change them there and run drlb ctl --reload")
	default: // --start-daemon, --stop-daemon
		return c, fmt.Errorf("%s: drlb has no connection synchronization daemon to start or stop: connections are synchronized between directors by ha.sync in the config file (peers, key_file), with the director's own life", a.Command)
	}
}

// optionError names an option and its value, as config.Error does.
func optionError(o config.IpvsadmOption, format string, args ...any) error {
	name := o.Name
	if name == "" {
		name = strconv.Quote(o.Value)
	} else if o.Has {
		name += ": " + strconv.Quote(o.Value)
	}
	return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
}

// parseOnly accepts the options allowed (canonical names) for cmd.
func (l *listOptions) parseOnly(cmd string, opts []config.IpvsadmOption, allowed ...string) error {
	for _, o := range opts {
		switch {
		case cmd == "-Z" && (o.Canon == "t" || o.Canon == "u" || o.Canon == "f"):
			// One service's counters, as ipvsadm -Z -t VIP:PORT.
			if l.service != nil {
				return optionError(o, "does not mix with another -t or -u: -Z zeroes one service, or all of them")
			}
			proto, ap, err := o.Service()
			if err != nil {
				return err
			}
			l.service = &serviceKey{proto.String(), ap, proto}
		case !slices.Contains(allowed, o.Canon):
			return optionError(o, "not an option of %s", cmd)
		case o.Canon == "n":
			l.numeric = true
		}
	}
	return nil
}

// parseList reads -L's options, refusing what ipvsadm refuses.
func (l *listOptions) parseList(opts []config.IpvsadmOption) error {
	var exclusive, layout *config.IpvsadmOption // -c, -t, --timeout, --daemon; --stats, --rate, ...
	var counters *config.IpvsadmOption          // --stats, --rate or --thresholds: never with -c
	for i := range opts {
		o := &opts[i]
		switch o.Canon {
		case "n":
			l.numeric = true
		case "exact":
			l.exact = true
		case "nosort":
			l.nosort = true
		case "sort": // the default; accepted for old scripts, as ipvsadm does
		case "tun-info":
			// A layout of its own, after the others (ipvsadm's
			// print_title); -c, --timeout and --daemon ignore it.
			l.tunInfo = true
		case "c", "t", "u", "f", "timeout", "daemon":
			if exclusive != nil {
				return optionError(*o, "does not mix with %s", exclusive.Name)
			}
			exclusive = o
			switch o.Canon {
			case "c":
				l.conns = true
			case "timeout":
				l.timeout = true
			case "daemon":
				l.daemon = true
			default:
				proto, ap, err := o.Service()
				if err != nil {
					return err
				}
				l.service = &serviceKey{proto.String(), ap, proto}
			}
		case "stats", "rate", "thresholds", "persistent-conn":
			if layout == nil {
				layout = o
			}
			if counters == nil && o.Canon != "persistent-conn" {
				counters = o
			}
			switch o.Canon {
			case "stats":
				l.stats = true
			case "rate":
				l.rate = true
			case "thresholds":
				l.thresholds = true
			default:
				l.persistConn = true
			}
		default:
			return optionError(*o, "not an option of -L")
		}
	}
	// ipvsadm refuses -c with --stats, --rate or --thresholds, and takes
	// --persistent-conn with it (a header with pe columns).
	switch {
	case l.conns && counters != nil:
		return optionError(*counters, "does not mix with %s", exclusive.Name)
	case layout != nil && exclusive != nil && (l.timeout || l.daemon):
		return optionError(*layout, "does not mix with %s", exclusive.Name)
	}
	return nil
}

// ipvsadmRunner runs commands for one director. Each change is a whole
// read-edit-apply (Editor.Edit), so neither a second drlb ctl nor a
// reload at the same time can lose a change.
type ipvsadmRunner struct {
	take func(conns bool) Snapshot
	ed   Editor
	// rateInterval is the time between the two samples of --rate.
	rateInterval time.Duration
}

func (x *ipvsadmRunner) run(ctx context.Context, args []string) Result {
	c, err := parseCommand(args)
	if err != nil {
		return refused(err)
	}
	switch {
	case c.name == "-h":
		return Result{Output: IpvsadmUsage}
	case c.name == "-v":
		return Result{Output: "drlb ctl: ipvsadm's command line, IPVS " + IpvsadmVersion + " semantics, direct routing only\n"}
	case c.name == "-L" && !c.list.timeout && !c.list.daemon:
		return x.list(ctx, c.list)
	}
	if x.ed == nil {
		return Result{Error: c.name + ": this director serves no changes and no configuration", Exit: exitFailure}
	}
	switch c.name {
	case "-L":
		var b strings.Builder
		if c.list.timeout {
			t := x.ed.Config().Timeouts
			fmt.Fprintf(&b, "Timeout (tcp tcpfin udp): %d %d %d\n", int(t.TCPEstablished.Seconds()), int(t.TCPFinWait.Seconds()), int(t.UDP.Seconds()))
		} // --daemon: no sync daemon runs, and ipvsadm prints nothing then
		return Result{Output: b.String()}
	case "-S":
		return Result{Output: config.SaveIpvsadm(x.ed.Config(), c.list.numeric)}
	case "-Z":
		if s := c.list.service; s != nil {
			if !x.ed.ZeroService(s.proto, s.addr) {
				return Result{Error: fmt.Sprintf("-%c: %q: No such service", s.protocol[0], s.addr.String()), Exit: exitFailure}
			}
			return Result{}
		}
		x.ed.ZeroCounters()
		return Result{}
	}
	// Read, edit and apply in one step: a reload between the read and
	// the apply would be undone by a change made on what it replaced.
	var editErr error
	err = x.ed.Edit(func(cur *config.Config) (*config.Config, error) {
		cfg, err := config.EditIpvsadm(cur, c.args)
		if err == nil && len(cfg.Services) == 0 {
			// A director serves at least one service (a file without
			// one is refused too); say so in the operator's terms.
			err = fmt.Errorf("%s: the table would be empty, and a running drlb serves at least one service: add the new services first, then delete the old ones (or stop the director)", strings.Join(c.args, " "))
		}
		editErr = err
		return cfg, err
	})
	switch {
	case editErr != nil:
		return refused(editErr)
	case err != nil:
		return refused(fmt.Errorf("%s: refused by the director, nothing changed: %w", strings.Join(c.args, " "), err))
	}
	return Result{}
}

// list answers -L: the table, its counters or rates, or the connections.
func (x *ipvsadmRunner) list(ctx context.Context, o listOptions) Result {
	var cfg *config.Config
	if x.ed != nil {
		cfg = x.ed.Config()
	}
	if o.conns {
		var b strings.Builder
		s := x.take(true)
		writeIpvsadmConns(&b, s, o)
		r := Result{Output: b.String()}
		if s.ConnEntriesOmitted > 0 {
			r.Error = fmt.Sprintf("drlb ctl: %d more connection entries not listed\n", s.ConnEntriesOmitted)
		}
		return r
	}
	s := x.take(false)
	var before *Snapshot
	if o.rate && !o.stats {
		first := s
		select {
		case <-ctx.Done():
			return Result{Error: ctx.Err().Error(), Exit: exitFailure}
		case <-time.After(x.rateInterval):
		}
		s, before = x.take(false), &first
	}
	var b strings.Builder
	if err := writeIpvsadmList(&b, s, before, cfg, o); err != nil {
		// A service -L -t names that is not there: ipvsadm exits 1.
		return Result{Error: err.Error(), Exit: exitFailure}
	}
	if o.service == nil && !o.stats && !o.rate && !o.thresholds && !o.persistConn {
		WriteHA(&b, s) // nothing without ha:, so ipvsadm's output stays byte for byte
	}
	return Result{Output: b.String()}
}

// reloadResult is the answer to --reload.
func reloadResult(reload func() error) Result {
	if reload == nil {
		return Result{Error: "--reload: this director was started without a config file (drlb run -c): there is nothing to re-read", Exit: exitRefused}
	}
	if err := reload(); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return Result{Error: "--reload: " + err.Error(), Exit: exitFailure}
		}
		return refused(fmt.Errorf("--reload: nothing changed: %w", err))
	}
	return Result{}
}

// ipvsadmService is a service as -L prints it: the counters of the
// snapshot, the flags and netmask of the config.
type ipvsadmService struct {
	Service
	flags, mask string
	persistence int // seconds
}

// ipvsadmServices joins a snapshot's services with their config (matched
// by protocol, VIP and port) and sorts them as ipvsadm does: IPv4 before
// IPv6, TCP before UDP, then by address and port; real servers by
// address.
func ipvsadmServices(s Snapshot, cfg *config.Config, nosort bool) []ipvsadmService {
	out := make([]ipvsadmService, 0, len(s.Services))
	for _, svc := range s.Services {
		is := ipvsadmService{Service: svc, persistence: persistenceSeconds(svc.Persistence)}
		if svc.Sorry != nil && svc.Sorry.State == SorryStandingIn {
			// keepalived adds the sorry server to IPVS as a real server
			// while it stands in, and ipvsadm lists it so.
			is.RealServers = append(slices.Clip(is.RealServers), *svc.Sorry)
		}
		if cfg != nil {
			for i := range cfg.Services {
				c := &cfg.Services[i]
				if c.Protocol.String() == svc.Protocol && c.VIP == svc.VIP && c.Port == svc.Port {
					is.flags, is.persistence = c.Flags(), int(c.Persistence.Seconds())
					if is.persistence > 0 {
						is.mask = c.Netmask()
					}
				}
			}
		}
		if !nosort {
			is.RealServers = slices.Clone(is.RealServers)
			slices.SortStableFunc(is.RealServers, func(a, b Real) int { return config.IpvsadmCompare(a.Address, b.Address) })
		}
		out = append(out, is)
	}
	if !nosort {
		slices.SortStableFunc(out, func(a, b ipvsadmService) int {
			return cmp.Or(
				cmp.Compare(boolInt(a.VIP.Is6()), boolInt(b.VIP.Is6())),
				cmp.Compare(protoNumber(a.Protocol), protoNumber(b.Protocol)),
				config.IpvsadmCompare(a.VIP, b.VIP),
				cmp.Compare(a.Port, b.Port))
		})
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// protoNumber orders protocols as ipvsadm does: by protocol number.
func protoNumber(p string) int {
	switch p {
	case "tcp":
		return 6
	case "udp":
		return 17
	}
	return 256
}

// largeNumber is ipvsadm's counter column: 9 characters, abbreviated with
// K, M, G, T from 100 million on unless exact.
func largeNumber(n uint64, exact bool) string {
	switch {
	case exact && n >= 1e8: // longer numbers widen the column, one space before
		return " " + strconv.FormatUint(n, 10)
	case exact || n < 1e8:
		return fmt.Sprintf("%9d", n)
	case n < 1e9:
		return fmt.Sprintf("%8dK", n/1e3)
	case n < 1e11:
		return fmt.Sprintf("%8dM", n/1e6)
	case n < 1e14:
		return fmt.Sprintf("%8dG", n/1e9)
	}
	return fmt.Sprintf("%8dT", n/1e12)
}

// addrText prints an address and port for the listings: numeric with -n,
// well-known ports named without (config.FormatAddrPort).
func (o listOptions) addrText(a netip.Addr, port uint16) string {
	return config.FormatAddrPort(a, port, o.numeric)
}

// truncate cuts an IPv4 column as ipvsadm does (it never cuts IPv6 ones).
func truncate(s string, n int, v6 bool) string {
	if !v6 && len(s) > n {
		return s[:n]
	}
	return s
}

// writeIpvsadmList prints -L: the table (and with -t one service of it)
// in the layout the options ask for. before is the earlier sample of
// --rate.
func writeIpvsadmList(w io.Writer, s Snapshot, before *Snapshot, cfg *config.Config, o listOptions) error {
	services := ipvsadmServices(s, cfg, o.nosort)
	if o.service != nil {
		i := slices.IndexFunc(services, func(v ipvsadmService) bool {
			return v.Protocol == o.service.protocol && netip.AddrPortFrom(v.VIP, v.Port) == o.service.addr
		})
		if i < 0 {
			return fmt.Errorf("-%c: %q: No such service", o.service.protocol[0], o.service.addr.String())
		}
		services = services[i : i+1]
	} else {
		fmt.Fprintf(w, "IP Virtual Server version %s (size=%d)\n", IpvsadmVersion, s.MaxConns)
	}
	switch {
	case o.stats:
		io.WriteString(w, statsTitle)
	case o.rate:
		io.WriteString(w, rateTitle)
	case o.thresholds:
		fmt.Fprintf(w, "%-33s %-10s %-10s %-10s %-10s\n%s", "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn", titleRemote)
	case o.persistConn:
		fmt.Fprintf(w, "%-33s %-9s %-11s %-10s %-10s\n%s", "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn", titleRemote)
	case o.tunInfo:
		io.WriteString(w, "Prot LocalAddress:Port Scheduler Flags\n"+
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		io.WriteString(w, titleList)
	}
	num := func(n uint64) string { return largeNumber(n, o.exact) }
	var earlier map[string]Service
	dt := 1.0
	if before != nil {
		earlier = servicesByKey(*before)
		dt = interval(*before, s)
	}
	for _, svc := range services {
		v6 := svc.VIP.Is6()
		name := truncate(serviceName(svc.Protocol, o.addrText(svc.VIP, svc.Port)), 33, v6)
		switch {
		case o.stats:
			io.WriteString(w, counterLine(name, num(svc.Connections), num(svc.InPackets), num(0), num(svc.InBytes), num(0)))
		case o.rate:
			b := earlier[sampleKey(svc.Service)]
			io.WriteString(w, counterLine(name, num(perSecond(b.Connections, svc.Connections, dt)),
				num(perSecond(b.InPackets, svc.InPackets, dt)), num(0), num(perSecond(b.InBytes, svc.InBytes, dt)), num(0)))
		default:
			line := name + " " + svc.Scheduler
			if svc.flags != "" {
				line += " (" + svc.flags + ")"
			}
			if svc.persistence > 0 {
				line += " persistent " + strconv.Itoa(svc.persistence)
				if svc.mask != "" {
					line += " mask " + svc.mask
				}
			}
			io.WriteString(w, line+"\n")
		}
		var reals map[netip.Addr]Real
		if o.rate {
			reals = realsByAddr(earlier[sampleKey(svc.Service)])
		}
		for _, r := range svc.RealServers {
			addr := truncate(o.addrText(r.Address, svc.Port), 28, v6)
			switch {
			case o.stats:
				io.WriteString(w, realCounterLine(addr, num(r.Connections), num(r.InPackets), num(0), num(r.InBytes), num(0)))
			case o.rate:
				b := reals[r.Address]
				io.WriteString(w, realCounterLine(addr, fmt.Sprintf(" %8d", perSecond(b.Connections, r.Connections, dt)),
					fmt.Sprintf(" %8d", perSecond(b.InPackets, r.InPackets, dt)), fmt.Sprintf(" %8d", 0),
					num(perSecond(b.InBytes, r.InBytes, dt)), num(0)))
			case o.thresholds:
				fmt.Fprintf(w, "  -> %-28s %-10d %-10d %-10d %-10d\n", addr, 0, 0, r.Active, r.Inactive)
			case o.persistConn:
				fmt.Fprintf(w, "  -> %-28s %-9d %-11d %-10d %-10d\n", addr, r.Weight, r.Persistent, r.Active, r.Inactive)
			case o.tunInfo: // direct routing: no tunnel, n/a
				fmt.Fprintf(w, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", addr, "Route", "n/a", r.Weight, r.Active, r.Inactive)
			default:
				io.WriteString(w, realLine(addr, r.Weight, r.Active, r.Inactive)+"\n")
			}
		}
	}
	if s.BGP != nil && o.service == nil && !o.stats && !o.rate && !o.thresholds && !o.persistConn && !o.tunInfo {
		writeIpvsadmBGP(w, s)
	}
	return nil
}

// writeIpvsadmBGP ends the table of -L with the BGP side, when the
// director speaks BGP: a blank line, then the speaker, each session and
// each VIP's announcement. Its lines match none of ipvsadm's (no "TCP",
// "UDP" or "->"), and a director without bgp: prints none of them, so
// its -L stays ipvsadm's byte for byte.
func writeIpvsadmBGP(w io.Writer, s Snapshot) {
	b := s.BGP
	head := fmt.Sprintf("BGP AS %d", b.ASN)
	if b.RouterID.IsValid() {
		head += " router-id " + b.RouterID.String()
	}
	switch {
	case b.Stopping:
		head += " stopping (everything withdrawn)"
	case b.Drained:
		head += " drained (everything withdrawn: drlb ctl bgp undrain)"
	}
	fmt.Fprintf(w, "\n%s\n", head)
	for _, p := range b.Peers {
		line := fmt.Sprintf("  peer %s AS %d %s", p.Address, p.ASN, strings.ToUpper(p.State))
		if !p.Since.IsZero() {
			upDown := "down"
			if p.State == "established" {
				upDown = "up"
			}
			line += " " + upDown + " " + s.Time.Sub(p.Since).Truncate(time.Second).String()
		}
		fmt.Fprintln(w, line)
	}
	for _, v := range b.VIPs {
		servers := fmt.Sprintf("%d usable real server", v.Usable)
		if v.Usable != 1 {
			servers += "s"
		}
		prefix := netip.PrefixFrom(v.VIP, v.VIP.BitLen())
		if v.Announced {
			fmt.Fprintf(w, "  announced %s via %s (%s)\n", prefix, v.NextHop, servers)
		} else {
			fmt.Fprintf(w, "  not announced %s (%s; %s, at least %d needed)\n", prefix, v.Why, servers, b.MinRealServers)
		}
	}
}

// ipvsadmState is a connection state as IPVS names it: a persistence
// template is NONE (newer kernels show ASSURED once a connection it placed
// reached ESTABLISHED; drlb does not track that).
func ipvsadmState(s string) string {
	if s == "TEMPLATE" {
		return "NONE"
	}
	return s
}

// writeIpvsadmConns prints -L -c: the connection table as ipvsadm -Lc.
func writeIpvsadmConns(w io.Writer, s Snapshot, o listOptions) {
	fmt.Fprintln(w, "IPVS connection entries")
	if o.persistConn {
		// Lines with pe data would have two more columns; drlb has no
		// persistence engine, so its lines are the plain ones, as
		// ipvsadm prints a connection without pe data.
		fmt.Fprintf(w, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n", "state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(w, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	}
	for _, c := range s.ConnEntries {
		fmt.Fprintf(w, "%-3s %-6s %-11s %-18s %-18s %s\n", strings.ToUpper(c.Protocol), expires(c.Expires), ipvsadmState(c.State),
			o.addrText(c.Client.Addr(), c.Client.Port()), o.addrText(c.Virtual.Addr(), c.Virtual.Port()),
			o.addrText(c.Real, c.Virtual.Port()))
	}
}

// IpvsadmUsage is `drlb ctl -h`: the ipvsadm commands drlb ctl takes.
const IpvsadmUsage = `usage: drlb ctl [-s SOCKET] IPVSADM-ARGS...    ipvsadm's own command line, e.g. drlb ctl -L -n
       drlb ctl [-s SOCKET] --reload           re-read the config file and apply it, as SIGHUP does
       drlb ctl list [-stats | -rate | -conns] [-o json] [-s SOCKET]

ipvsadm commands (long options too: --add-service, --tcp-service, ...):
  -A -t|-u VIP:PORT [-s SCHED] [-b FLAGS] [-p [TIMEOUT]] [-M NETMASK]   add a service (wlc; -p alone: 360 s)
  -E -t|-u VIP:PORT [-s SCHED] [-b FLAGS] [-p [TIMEOUT]] [-M NETMASK]   set a service as -A would, keep its servers
  -D -t|-u VIP:PORT                                                      delete a service
  -a -t|-u VIP:PORT -r RIP[:PORT] [-g] [-w WEIGHT]                        add a real server (weight 1)
  -e -t|-u VIP:PORT -r RIP[:PORT] [-g] [-w WEIGHT]                        set its weight (1 without -w)
  -d -t|-u VIP:PORT -r RIP[:PORT]                                         delete a real server
  -C                                                                     clear the table (refused: a director serves one service at least)
  -Z [-t|-u VIP:PORT]                                                    zero the counters of every service, or of one
  -L|-l [-n] [--stats | --rate | --thresholds | --persistent-conn | --tun-info] [--exact] [--nosort] [-t|-u VIP:PORT]
  -L|-l [-n] -c                                                          the connection table
  -L|-l --timeout                                                        the tcp, tcpfin and udp timeouts
  -S [-n]                                                                the table as ipvsadm-save text (drlb run -c reads it)

A change is checked whole and applied whole or not at all; a refused one exits 2 and
names the option and value. Changes last until --reload, SIGHUP or a restart: keep them
with drlb ctl -S -n > rules. Addresses are always printed as numbers (drlb asks no DNS
server); without -n well-known ports are printed by name (http), as ipvsadm does.
With a bgp: block, -L ends with the BGP sessions and what is announced (drlb ctl bgp).
Refused: -m and -i (drlb does direct routing only), -f (firewall marks), -x/-y
thresholds, -o, --pe, -R, --set and the sync daemon.
`
