package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ipvsadm's command line, as `drlb ctl` takes it so that a script written
// for ipvsadm works with the program name changed:
//
//	-A|-E -t|-u VIP:PORT [-s SCHED] [-b FLAGS] [-p [TIMEOUT]] [-M NETMASK]
//	-D -t|-u VIP:PORT
//	-a|-e -t|-u VIP:PORT -r RIP[:PORT] [-g] [-w WEIGHT]
//	-d -t|-u VIP:PORT -r RIP[:PORT]
//	-C
//
// The options are read by the same code as the rules of a file (-A, -a),
// so a rule means the same on a line and on the command line. As ipvsadm
// (popt) does, short options may be bundled (-Ln, -Sn, -At) and take an
// attached value (-w3), and the command may stand anywhere on the line.

// ipvsadmCommands maps every spelling of an ipvsadm command to its short
// one (long-only commands map to themselves).
var ipvsadmCommands = map[string]string{
	"-A": "-A", "--add-service": "-A",
	"-E": "-E", "--edit-service": "-E",
	"-D": "-D", "--delete-service": "-D",
	"-C": "-C", "--clear": "-C",
	"-a": "-a", "--add-server": "-a",
	"-e": "-e", "--edit-server": "-e",
	"-d": "-d", "--delete-server": "-d",
	"-L": "-L", "-l": "-L", "--list": "-L",
	"-Z": "-Z", "--zero": "-Z",
	"-S": "-S", "--save": "-S",
	"-R": "-R", "--restore": "-R",
	"-h": "-h", "--help": "-h",
	"-v": "-v", "--version": "-v",
	"--set":          "--set",
	"--start-daemon": "--start-daemon",
	"--stop-daemon":  "--stop-daemon",
}

// cmdList marks the options of -L (and -S, -Z) in otherOptSpecs.
const cmdList = 'L'

// otherOptSpecs are the ipvsadm options that are no part of a -A or -a
// rule: listing, output and sync daemon options.
var otherOptSpecs = map[string]optSpec{
	"-n": {"n", argNone, cmdList}, "--numeric": {"n", argNone, cmdList},
	"-c": {"c", argNone, cmdList}, "--connection": {"c", argNone, cmdList},
	"--stats":           {"stats", argNone, cmdList},
	"--rate":            {"rate", argNone, cmdList},
	"--thresholds":      {"thresholds", argNone, cmdList},
	"--persistent-conn": {"persistent-conn", argNone, cmdList},
	"--tun-info":        {"tun-info", argNone, cmdList}, // ipvsadm 1.31
	"--nosort":          {"nosort", argNone, cmdList},
	"--sort":            {"sort", argNone, cmdList},
	"-X":                {"exact", argNone, cmdList}, "--exact": {"exact", argNone, cmdList},
	"--timeout": {"timeout", argNone, cmdList},
	"--daemon":  {"daemon", argNone, cmdList},
	"-6":        {"6", argNone, cmdBoth}, "--ipv6": {"6", argNone, cmdBoth},
	"--mcast-interface": {"mcast-interface", argRequired, cmdList},
	"--syncid":          {"syncid", argRequired, cmdList},
}

// lookupOpt finds an option of either table.
func lookupOpt(name string) (optSpec, bool) {
	if s, ok := optSpecs[name]; ok {
		return s, true
	}
	s, ok := otherOptSpecs[name]
	return s, ok
}

// cmdArity is how many values a command takes (the sync daemon's state).
func cmdArity(canon string) int {
	if canon == "--start-daemon" || canon == "--stop-daemon" {
		return argRequired
	}
	return argNone
}

// shortArity is what each one-letter option and command takes, for
// splitting bundles.
var shortArity = func() map[byte]int {
	m := map[byte]int{}
	for _, t := range []map[string]optSpec{optSpecs, otherOptSpecs} {
		for name, s := range t {
			if len(name) == 2 && name[0] == '-' {
				m[name[1]] = s.arg
			}
		}
	}
	for name := range ipvsadmCommands {
		if len(name) == 2 && name[0] == '-' {
			m[name[1]] = argNone
		}
	}
	return m
}()

// arity is what the option or command spelled name takes.
func arity(name string) int {
	if c, ok := ipvsadmCommands[name]; ok {
		return cmdArity(c)
	}
	if s, ok := lookupOpt(name); ok {
		return s.arg
	}
	return argNone
}

// expandArgs splits a command line as ipvsadm reads it: -Ln is -L -n,
// -At is -A -t, -w3 is -w 3. A word that is an option's value stays as
// it is (-w -1 is a weight of -1, not an option).
func expandArgs(args []string) []token {
	toks := make([]token, len(args))
	for i, a := range args {
		toks[i] = token{a, 0}
	}
	return expandTokens(toks)
}

// expandTokens is expandArgs for the words of a rule file's line, each
// part keeping the column it stands at: a rule means the same in a file
// as on the command line.
func expandTokens(words []token) []token {
	var toks []token
	want := argNone // what the previous option still takes
	for _, w := range words {
		a := w.text
		if want == argRequired || want == argOptional && !strings.HasPrefix(a, "-") {
			toks = append(toks, w)
			want = argNone
			continue
		}
		want = argNone
		switch {
		case strings.HasPrefix(a, "--"):
			name, _, inline := strings.Cut(a, "=")
			toks = append(toks, w)
			if !inline {
				want = arity(name)
			}
		case len(a) > 2 && a[0] == '-' && isBundle(a):
			for k := 1; k < len(a); k++ {
				toks = append(toks, token{"-" + a[k:k+1], w.col + k - 1})
				if ar := shortArity[a[k]]; ar != argNone {
					if k+1 < len(a) {
						toks = append(toks, token{a[k+1:], w.col + k + 1})
					} else {
						want = ar
					}
					break
				}
			}
		default:
			toks = append(toks, w)
			want = arity(a)
		}
	}
	return toks
}

// isBundle reports whether a (-Lnc, -w3) is short options run together:
// every letter up to the first that takes a value is an ipvsadm option.
func isBundle(a string) bool {
	for k := 1; k < len(a); k++ {
		ar, ok := shortArity[a[k]]
		if !ok {
			return false
		}
		if ar != argNone {
			return true
		}
	}
	return true
}

// cmdError is an error on the command line: no file, no position.
func cmdError(field, value, format string, args ...any) error {
	return &Error{Field: field, Value: value, Msg: fmt.Sprintf(format, args...)}
}

// findCommand picks the command out of toks, wherever it stands, and
// returns the other words in order.
func findCommand(toks []token) (cmd token, canon string, rest []token, err error) {
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		name, inline := t.text, false
		if strings.HasPrefix(name, "--") {
			name, _, inline = strings.Cut(name, "=")
		}
		if c, ok := ipvsadmCommands[name]; ok {
			if canon != "" {
				return cmd, "", nil, cmdError(name, "", "multiple commands specified (%s and %s)", cmd.text, name)
			}
			cmd, canon = token{name, t.col}, c
			switch {
			case inline && cmdArity(c) == argNone:
				return cmd, "", nil, cmdError(name, "", "this command takes no value")
			case !inline && cmdArity(c) == argRequired && i+1 < len(toks):
				i++
			}
			continue
		}
		rest = append(rest, t)
		if s, ok := lookupOpt(name); ok && !inline && i+1 < len(toks) {
			if s.arg == argRequired || s.arg == argOptional && !strings.HasPrefix(toks[i+1].text, "-") {
				i++
				rest = append(rest, toks[i])
			}
		}
	}
	if canon == "" {
		return cmd, "", nil, cmdError("", "", "no command: give one of -A -E -D -a -e -d -C -L -Z -S")
	}
	return cmd, canon, rest, nil
}

// IpvsadmArgs is an ipvsadm command line split as ipvsadm reads it.
type IpvsadmArgs struct {
	// Command is the command in its short spelling: -A, -E, -D, -a, -e,
	// -d, -C, -L (also for -l and --list), -Z, -S, -R, -h, -v; or a
	// long-only one: --set, --start-daemon, --stop-daemon.
	Command string
	// Options are the other options in order, bundles split.
	Options []IpvsadmOption
}

// IpvsadmOption is one option of a command line.
type IpvsadmOption struct {
	Name  string // as written: -n, --numeric; "" for a word that is no option
	Canon string // the option's own name: n for both; t, u, r, s, stats, exact, ...
	Value string // its value, or the word when Name is ""
	Has   bool   // a value was given (-p's is optional)
}

// Service reads the option's VIP[:PORT] (-t, -u) as ipvsadm does; -f and
// SCTP services are refused, naming the option.
func (o IpvsadmOption) Service() (Protocol, netip.AddrPort, error) {
	var proto Protocol
	switch o.Canon {
	case "t":
		proto = TCP
	case "u":
		proto = UDP
	case "f":
		return 0, netip.AddrPort{}, cmdError(o.Name, o.Value, "firewall-mark services are not supported: drlb matches protocol, VIP and port")
	default:
		return 0, netip.AddrPort{}, cmdError(o.Name, o.Value, "not a service: give -t VIP:PORT or -u VIP:PORT")
	}
	a, port, _, err := splitHostPort(o.Value)
	if err != nil {
		return 0, netip.AddrPort{}, cmdError(o.Name, o.Value, "%v", err)
	}
	return proto, netip.AddrPortFrom(a, port), nil
}

// SplitIpvsadm splits one ipvsadm command line into its command and
// options, refusing what ipvsadm refuses: no command or two, an unknown
// option, an option given twice, a missing value. What the options mean is
// left to the command: EditIpvsadm for the changes, the listing for -L.
func SplitIpvsadm(args []string) (IpvsadmArgs, error) {
	_, canon, rest, err := findCommand(expandArgs(args))
	if err != nil {
		return IpvsadmArgs{}, err
	}
	out := IpvsadmArgs{Command: canon}
	seen := map[string]string{}
	for i := 0; i < len(rest); i++ {
		t := rest[i].text
		name, inline, hasInline := strings.Cut(t, "=")
		if !strings.HasPrefix(name, "--") {
			name, inline, hasInline = t, "", false
		}
		s, ok := lookupOpt(name)
		if !ok {
			if strings.HasPrefix(t, "-") && len(t) > 1 {
				return IpvsadmArgs{}, cmdError("", t, "unknown ipvsadm option")
			}
			out.Options = append(out.Options, IpvsadmOption{Value: t, Has: true})
			continue
		}
		if first, dup := seen[s.canon]; dup {
			return IpvsadmArgs{}, cmdError(name, "", "option given twice (first as %s)", first)
		}
		seen[s.canon] = name
		o := IpvsadmOption{Name: name, Canon: s.canon}
		switch {
		case hasInline:
			if s.arg == argNone {
				return IpvsadmArgs{}, cmdError(name, inline, "this option takes no value")
			}
			o.Value, o.Has = inline, true
		case s.arg == argRequired:
			if i+1 >= len(rest) {
				return IpvsadmArgs{}, cmdError(name, "", "needs a value")
			}
			i++
			o.Value, o.Has = rest[i].text, true
		case s.arg == argOptional && i+1 < len(rest) && !strings.HasPrefix(rest[i+1].text, "-"):
			i++
			o.Value, o.Has = rest[i].text, true
		}
		out.Options = append(out.Options, o)
	}
	return out, nil
}

// edit is one parsed change, not yet applied to a config.
type edit struct {
	cmd   token  // as written
	canon string // -A -E -D -a -e -d -C
	key   serviceKey
	addr  opt        // -t/-u
	svc   Service    // -A, -E: the service's parameters
	rs    RealServer // -a, -e: the real server; -d: its address
	rsOpt opt        // -r
	// at holds where values came from, under editSvc and editRS; apply
	// moves them to the indices the change lands at.
	at sites
}

const (
	editSvc = "services[0]"
	editRS  = "services[0].realservers[0]"
)

// EditIpvsadm applies one ipvsadm command that changes the table (-A, -E,
// -D, -a, -e, -d, -C, by any spelling, with ipvsadm's options) to a copy
// of cfg and returns the copy, validated whole; cfg itself is never
// changed, and a nil cfg is an empty table.
//
// The semantics are ipvsadm's: -A adds a service (scheduler wlc unless -s,
// -p without a value is 360 s, as in ipvsadm, -M is the persistence netmask); -E sets a
// service's parameters as -A would (what it leaves out takes the default
// again, as in ipvsadm) and keeps its real servers; -D removes a service
// and its real servers; -a adds a real server (weight 1 unless -w, -g the
// only forwarding method); -e sets its weight (1 unless -w, as in
// ipvsadm); -d removes it; -C removes every service. Services are found
// by protocol, VIP and port, real servers by address.
//
// A refused command returns an *Error (wrapping ErrInvalid) whose Field is
// the option and Value its text, with ipvsadm's own words where it has
// some: `-t: "198.18.0.100:80": Service already exists`,
// `-m: drlb does direct routing only (-g): ...`.
func EditIpvsadm(cfg *Config, args []string) (*Config, error) {
	e, err := parseEdit(args)
	if err != nil {
		return nil, err
	}
	return e.apply(cfg)
}

// CheckIpvsadm checks one command line as EditIpvsadm would, without a
// config: syntax, values and what drlb does not do. Whether the service
// or real server exists is left to EditIpvsadm. It lets a client refuse a
// bad command before it asks the director.
func CheckIpvsadm(args []string) error {
	_, err := parseEdit(args)
	return err
}

func parseEdit(args []string) (*edit, error) {
	cmd, canon, rest, err := findCommand(expandArgs(args))
	if err != nil {
		return nil, err
	}
	r := &ipvsReader{at: sites{}, c: &Config{}, byKey: map[serviceKey]int{}}
	e := &edit{cmd: cmd, canon: canon, at: r.at}
	var kind byte
	switch canon {
	case "-C":
		if len(rest) > 0 {
			return nil, cmdError(cmd.text, rest[0].text, "-C takes no options")
		}
		return e, nil
	case "-A", "-E", "-D":
		kind = cmdService
	case "-a", "-e", "-d":
		kind = cmdServer
	default:
		return nil, cmdError(cmd.text, "", "not a change of the table (-A -E -D -a -e -d -C)")
	}
	for _, t := range rest {
		name, _, _ := strings.Cut(t.text, "=")
		// -6 is left to r.options: it comes with -f, whose refusal says
		// what is wrong with the line.
		if s, ok := otherOptSpecs[name]; ok && s.canon != "6" {
			return nil, cmdError(name, "", "not an option of %s", cmd.text)
		}
	}
	opts, err := r.options(cmd, rest, kind)
	if err != nil {
		return nil, err
	}
	if e.key, e.addr, err = r.serviceAddr(cmd, opts); err != nil {
		return nil, err
	}
	switch canon {
	case "-D":
		return e, only(cmd, opts, "t", "u")
	case "-d":
		if err := r.unsupportedServer(opts); err != nil {
			return nil, err
		}
		// -g is harmless (the only method), so it is taken; ipvsadm
		// refuses a weight or threshold here, and so does drlb.
		if err := only(cmd, opts, "t", "u", "r", "g"); err != nil {
			return nil, err
		}
		a, ro, err := r.serverAddr(cmd, e.key.port, opts)
		e.rs.Address, e.rsOpt = a, ro
		return e, err
	case "-A", "-E":
		if err := r.unsupportedService(opts); err != nil {
			return nil, err
		}
		e.svc, err = r.service(editSvc, e.key, e.addr, opts)
		return e, err
	default: // -a, -e
		if err := r.unsupportedServer(opts); err != nil {
			return nil, err
		}
		e.rs, err = r.server(cmd, e.key.port, editRS, opts)
		e.rsOpt = opts["r"]
		return e, err
	}
}

// only refuses the options of cmd's kind that cmd itself does not take
// (-D -s, -d -w).
func only(cmd token, opts map[string]opt, allowed ...string) error {
	for canon, o := range opts {
		if !slices.Contains(allowed, canon) {
			return cmdError(o.name.text, o.value.text, "not an option of %s", cmd.text)
		}
	}
	return nil
}

func (e *edit) apply(cfg *Config) (*Config, error) {
	c := cloneConfig(cfg)
	if e.canon == "-C" {
		c.Services = nil
		return c, nil
	}
	refuse := func(o opt, msg string) error { return cmdError(o.name.text, o.value.text, "%s", msg) }
	i := slices.IndexFunc(c.Services, func(s Service) bool {
		return s.Protocol == e.key.proto && s.VIP == e.key.vip && s.Port == e.key.port
	})
	at := sites{}
	switch e.canon {
	case "-A":
		if i >= 0 {
			return nil, refuse(e.addr, "Service already exists")
		}
		c.Services = append(c.Services, e.svc)
		e.place(at, len(c.Services)-1, 0)
	case "-E":
		if i < 0 {
			return nil, refuse(e.addr, "No such service")
		}
		old := c.Services[i]
		s := e.svc
		// What no ipvsadm option says stays: the real servers, the
		// sorry server, the drain timeout.
		s.RealServers, s.Line = old.RealServers, old.Line
		s.SorryServer, s.DrainTimeout = old.SorryServer, old.DrainTimeout
		if s.Scheduler == old.Scheduler {
			s.SchedOptions.TableSize = old.SchedOptions.TableSize // mh_table_size: no ipvsadm option says it
		}
		c.Services[i] = s
		e.place(at, i, 0)
	case "-D":
		if i < 0 {
			return nil, refuse(e.addr, "No such service")
		}
		c.Services = slices.Delete(c.Services, i, i+1)
	default: // -a, -e, -d
		if i < 0 {
			return nil, refuse(e.addr, "Service not defined")
		}
		s := &c.Services[i]
		j := slices.IndexFunc(s.RealServers, func(r RealServer) bool { return r.Address == e.rs.Address })
		switch {
		case e.canon == "-a" && j >= 0:
			return nil, refuse(e.rsOpt, "Destination already exists")
		case e.canon == "-a":
			s.RealServers = append(s.RealServers, e.rs)
			e.place(at, i, len(s.RealServers)-1)
			e.placeService(at, i)
		case j < 0:
			return nil, refuse(e.rsOpt, "No such destination")
		case e.canon == "-e":
			s.RealServers[j].Weight = e.rs.Weight
			e.place(at, i, j)
			e.placeService(at, i)
		default: // -d
			s.RealServers = slices.Delete(s.RealServers, j, j+1)
		}
	}
	if err := validateConfig(c, "", at, true); err != nil {
		return nil, err
	}
	return c, nil
}

// place records e's value sites at the service and real server indices
// the change landed at, so that validation names the option and value.
func (e *edit) place(at sites, i, j int) {
	svc := index("services", i)
	rs := index(svc+".realservers", j)
	for k, v := range e.at {
		switch {
		case strings.HasPrefix(k, editRS):
			at[rs+k[len(editRS):]] = v
		case strings.HasPrefix(k, editSvc):
			at[svc+k[len(editSvc):]] = v
		}
	}
}

// placeService blames what a -a or -e makes wrong with the service it
// lands in (a maglev table too small for one more server with a weight) on
// its -t or -u: the service's own site is the line of the file the
// director started from, which the message named without the file
// ("3: services[0].mh_table_size: ..."), nothing of what was typed.
func (e *edit) placeService(at sites, i int) {
	svc := index("services", i)
	if _, ok := at[svc]; !ok {
		at[svc] = site{field: e.addr.name.text, value: e.addr.value.text}
	}
}

// cloneConfig copies c deeply (nil is an empty table with the defaults),
// so an edit never touches the config it started from.
func cloneConfig(c *Config) *Config {
	if c == nil {
		return &Config{Timeouts: DefaultTimeouts, MaxConns: DefaultMaxConns}
	}
	return c.Clone()
}
