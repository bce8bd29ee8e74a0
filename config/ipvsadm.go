package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ipvsadm-save text: what `ipvsadm -S` / `ipvsadm -Sn` print, one rule a line:
//
//	-A -t 198.18.0.100:80 -s wrr -p 300 -M 255.255.255.0
//	-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 4
//
// Long options, a leading "ipvsadm" word (a shell script of ipvsadm calls)
// and a -C before the first rule (common at the top of restore files) are
// accepted too. Only what direct routing can do is: -m (NAT), -i
// (tunneling), fwmark and SCTP services, thresholds, one-packet scheduling
// and persistence engines are refused with a reason.

// token is one word of a rule and its 1-based column.
type token struct {
	text string
	col  int
}

// optSpec describes one ipvsadm option: its canonical short name, whether
// it takes a value, and which command it belongs to.
type optSpec struct {
	canon string
	arg   int // argNone, argRequired, argOptional
	cmd   byte
}

const (
	argNone = iota
	argRequired
	argOptional

	cmdBoth    = 0
	cmdService = 'A'
	cmdServer  = 'a'
)

var optSpecs = map[string]optSpec{
	"-t": {"t", argRequired, cmdBoth}, "--tcp-service": {"t", argRequired, cmdBoth},
	"-u": {"u", argRequired, cmdBoth}, "--udp-service": {"u", argRequired, cmdBoth},
	"-f": {"f", argRequired, cmdBoth}, "--fwmark-service": {"f", argRequired, cmdBoth},
	"--sctp-service": {"sctp", argRequired, cmdBoth},
	"-s":             {"s", argRequired, cmdService}, "--scheduler": {"s", argRequired, cmdService},
	"-b": {"b", argRequired, cmdService}, "--sched-flags": {"b", argRequired, cmdService},
	"-p": {"p", argOptional, cmdService}, "--persistent": {"p", argOptional, cmdService},
	"-M": {"M", argRequired, cmdService}, "--netmask": {"M", argRequired, cmdService},
	"--pe": {"pe", argRequired, cmdService},
	"-o":   {"o", argNone, cmdService}, "--ops": {"o", argNone, cmdService},
	"-r": {"r", argRequired, cmdServer}, "--real-server": {"r", argRequired, cmdServer},
	"-g": {"g", argNone, cmdServer}, "--gatewaying": {"g", argNone, cmdServer},
	"-m": {"m", argNone, cmdServer}, "--masquerading": {"m", argNone, cmdServer},
	"-i": {"i", argNone, cmdServer}, "--ipip": {"i", argNone, cmdServer},
	"-w": {"w", argRequired, cmdServer}, "--weight": {"w", argRequired, cmdServer},
	"-x": {"x", argRequired, cmdServer}, "--u-threshold": {"x", argRequired, cmdServer},
	"-y": {"y", argRequired, cmdServer}, "--l-threshold": {"y", argRequired, cmdServer},
	// Each tunnel option is one of its own (ipvsadm -S writes several on
	// one line: --tun-type gue --tun-port 6080 --tun-nocsum).
	"--tun-type": {"tun-type", argRequired, cmdServer}, "--tun-port": {"tun-port", argRequired, cmdServer},
	"--tun-nocsum": {"tun-nocsum", argNone, cmdServer}, "--tun-csum": {"tun-csum", argNone, cmdServer},
	"--tun-remcsum": {"tun-remcsum", argNone, cmdServer},
}

// opt is one option as it appeared on a line.
type opt struct {
	name  token // as written: -w or --weight
	value token // text "" when the option has none
	has   bool  // value given (for -p's optional value)
}

type ipvsReader struct {
	file string
	at   sites
	c    *Config
	// byKey finds a service's index for -a.
	byKey map[serviceKey]int
	line  int
}

func (r *ipvsReader) errorf(t token, field, value, format string, args ...any) error {
	return &Error{File: r.file, Line: r.line, Column: t.col, Field: field, Value: value, Msg: fmt.Sprintf(format, args...)}
}

func parseIPVSADM(file string, data []byte) (*Config, sites, error) {
	r := &ipvsReader{
		file:  file,
		at:    sites{},
		c:     &Config{Timeouts: DefaultTimeouts, MaxConns: DefaultMaxConns},
		byKey: map[serviceKey]int{},
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for sc.Scan() {
		r.line++
		toks := tokenize(sc.Text())
		if len(toks) > 0 && (toks[0].text == "ipvsadm" || strings.HasSuffix(toks[0].text, "/ipvsadm")) {
			if len(toks) == 1 {
				return nil, nil, r.errorf(toks[0], "", "", "ipvsadm without a rule")
			}
			toks = toks[1:]
		}
		if len(toks) == 0 {
			continue
		}
		if err := r.rule(expandTokens(toks)); err != nil {
			return nil, nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, &Error{File: file, Line: r.line + 1, Msg: err.Error()}
	}
	return r.c, r.at, nil
}

// tokenize splits a line at blanks, dropping a # comment.
func tokenize(line string) []token {
	var toks []token
	for i := 0; i < len(line); {
		if line[i] == ' ' || line[i] == '\t' || line[i] == '\r' {
			i++
			continue
		}
		if line[i] == '#' {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' {
			j++
		}
		toks = append(toks, token{line[i:j], i + 1})
		i = j
	}
	return toks
}

func (r *ipvsReader) rule(toks []token) error {
	cmd := toks[0]
	switch cmd.text {
	case "-A", "--add-service":
		return r.addService(cmd, toks[1:])
	case "-a", "--add-server":
		return r.addServer(cmd, toks[1:])
	case "-C", "--clear":
		if len(toks) > 1 {
			return r.errorf(toks[1], cmd.text, toks[1].text, "-C takes no options")
		}
		if len(r.c.Services) > 0 {
			return r.errorf(cmd, cmd.text, "", "-C after rules would discard them: remove it or the rules above it")
		}
		return nil
	}
	if strings.HasPrefix(cmd.text, "-") {
		return r.errorf(cmd, "", cmd.text, "only -A and -a rules (what ipvsadm -S prints) are supported")
	}
	return r.errorf(cmd, "", cmd.text, "a rule starts with -A or -a")
}

// options reads a rule's options into canonical name -> opt.
func (r *ipvsReader) options(cmd token, toks []token, kind byte) (map[string]opt, error) {
	opts := map[string]opt{}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		name, inline, hasInline := strings.Cut(t.text, "=")
		if !strings.HasPrefix(name, "--") {
			name, inline, hasInline = t.text, "", false
		}
		spec, ok := optSpecs[name]
		if !ok && (name == "-6" || name == "--ipv6") {
			// ipvsadm takes -6 only after -f, for an IPv6 firewall-mark
			// service (ipvsadm -S writes "-A -f 1 -6"): refuse what the
			// line is, a fwmark service, not the -6 that came with it.
			if f, ok := opts["f"]; ok {
				return nil, r.errorf(f.name, f.name.text, f.value.text, "firewall-mark services are not supported: drlb matches protocol, VIP and port")
			}
			return nil, r.errorf(t, name, "", "-6 used before -f: it marks an IPv6 firewall-mark service (not supported); a -t or -u service is IPv6 by its address")
		}
		if !ok {
			if strings.HasPrefix(t.text, "-") {
				return nil, r.errorf(t, "", t.text, "unknown or unsupported ipvsadm option")
			}
			return nil, r.errorf(t, "", t.text, "unexpected word: expected an option like -t, -s or -w")
		}
		if spec.cmd != cmdBoth && spec.cmd != kind {
			return nil, r.errorf(t, name, "", "this option belongs to -%c rules, not %s", spec.cmd, cmd.text)
		}
		if prev, dup := opts[spec.canon]; dup {
			where := "" // the command line has no columns
			if prev.name.col > 0 {
				where = fmt.Sprintf(" at column %d", prev.name.col)
			}
			return nil, r.errorf(t, name, "", "option given twice on one rule (first as %s%s)", prev.name.text, where)
		}
		o := opt{name: token{name, t.col}}
		switch {
		case hasInline:
			if spec.arg == argNone {
				return nil, r.errorf(t, name, inline, "this option takes no value")
			}
			o.value, o.has = token{inline, t.col + len(name) + 1}, true
		case spec.arg == argRequired:
			if i+1 >= len(toks) {
				return nil, r.errorf(t, name, "", "needs a value")
			}
			i++
			o.value, o.has = toks[i], true
		case spec.arg == argOptional:
			// -p [timeout]: a following word that is not an option is
			// the timeout, as in ipvsadm.
			if i+1 < len(toks) && !strings.HasPrefix(toks[i+1].text, "-") {
				i++
				o.value, o.has = toks[i], true
			}
		}
		opts[spec.canon] = o
	}
	return opts, nil
}

// serviceAddr reads -t/-u VIP[:PORT] and refuses the service kinds drlb
// cannot serve.
func (r *ipvsReader) serviceAddr(cmd token, opts map[string]opt) (serviceKey, opt, error) {
	if o, ok := opts["f"]; ok {
		return serviceKey{}, o, r.errorf(o.name, o.name.text, o.value.text, "firewall-mark services are not supported: drlb matches protocol, VIP and port")
	}
	if o, ok := opts["sctp"]; ok {
		return serviceKey{}, o, r.errorf(o.name, o.name.text, o.value.text, "SCTP services are not supported: only tcp (-t) and udp (-u)")
	}
	t, hasT := opts["t"]
	u, hasU := opts["u"]
	switch {
	case hasT && hasU:
		return serviceKey{}, u, r.errorf(u.name, u.name.text, u.value.text, "a rule names one service: -t or -u, not both")
	case !hasT && !hasU:
		return serviceKey{}, opt{}, r.errorf(cmd, cmd.text, "", "needs a service: -t VIP:PORT or -u VIP:PORT")
	}
	o, proto := t, TCP
	if hasU {
		o, proto = u, UDP
	}
	a, port, _, err := splitHostPort(o.value.text)
	if err != nil {
		return serviceKey{}, o, r.errorf(o.value, o.name.text, o.value.text, "%v", err)
	}
	return serviceKey{proto, a, port}, o, nil
}

func (r *ipvsReader) addService(cmd token, toks []token) error {
	opts, err := r.options(cmd, toks, cmdService)
	if err != nil {
		return err
	}
	key, addr, err := r.serviceAddr(cmd, opts)
	if err != nil {
		return err
	}
	if err := r.unsupportedService(opts); err != nil {
		return err
	}
	if j, dup := r.byKey[key]; dup {
		return r.errorf(addr.value, addr.name.text, addr.value.text, "service already defined at line %d", r.c.Services[j].Line)
	}
	i := len(r.c.Services)
	s, err := r.service(index("services", i), key, addr, opts)
	if err != nil {
		return err
	}
	r.byKey[key] = i
	r.c.Services = append(r.c.Services, s)
	return nil
}

// unsupportedService refuses the -A options drlb has no equivalent for.
func (r *ipvsReader) unsupportedService(opts map[string]opt) error {
	if o, ok := opts["o"]; ok {
		return r.errorf(o.name, o.name.text, "", "one-packet scheduling (-o) is not supported")
	}
	if o, ok := opts["pe"]; ok {
		return r.errorf(o.name, o.name.text, o.value.text, "persistence engines are not supported")
	}
	return nil
}

// service builds the service key names from -A options (-E's too), with
// ipvsadm's defaults for what they leave out, and marks where each value
// came from under path.
func (r *ipvsReader) service(path string, key serviceKey, addr opt, opts map[string]opt) (Service, error) {
	s := Service{
		VIP: key.vip, Port: key.port, Protocol: key.proto,
		Scheduler:       DefaultScheduler,
		PersistenceBits: fullBits(key.vip.Is6()),
		Line:            r.line,
	}
	r.mark(path, addr.value, addr.name.text, ".vip", ".port", ".protocol")
	if o, ok := opts["s"]; ok {
		s.Scheduler = o.value.text
		r.mark(path+".scheduler", o.value, o.name.text)
	}
	if o, ok := opts["p"]; ok {
		s.Persistence = DefaultPersistence
		r.at[path+".persistence"] = site{line: r.line, col: o.name.col, field: o.name.text, value: ""}
		if o.has {
			n, err := parseUint(o.value.text, uint64(maxPersistence/time.Second), "persistence timeout (seconds)")
			if err != nil || n == 0 {
				return s, r.errorf(o.value, o.name.text, o.value.text, "persistence timeout must be 1..%d seconds", maxPersistence/time.Second)
			}
			s.Persistence = time.Duration(n) * time.Second
			r.mark(path+".persistence", o.value, o.name.text)
		}
	}
	if o, ok := opts["M"]; ok {
		bits, err := parseIPVSNetmask(o.value.text, key.vip.Is6())
		if err != nil {
			return s, r.errorf(o.value, o.name.text, o.value.text, "%v", err)
		}
		s.PersistenceBits = bits
		r.mark(path+".persistence_netmask", o.value, o.name.text)
	}
	if o, ok := opts["b"]; ok {
		for _, f := range strings.Split(o.value.text, ",") {
			if err := applyFlag(&s.SchedOptions, s.Scheduler, f, true); err != nil {
				return s, r.errorf(o.value, o.name.text, f, "%v", err)
			}
		}
		r.mark(path+".flags", o.value, o.name.text)
	}
	return s, nil
}

func (r *ipvsReader) addServer(cmd token, toks []token) error {
	opts, err := r.options(cmd, toks, cmdServer)
	if err != nil {
		return err
	}
	key, addr, err := r.serviceAddr(cmd, opts)
	if err != nil {
		return err
	}
	i, ok := r.byKey[key]
	if !ok {
		return r.errorf(addr.value, addr.name.text, addr.value.text, "no such service: define it with -A on an earlier line")
	}
	s := &r.c.Services[i]
	if err := r.unsupportedServer(opts); err != nil {
		return err
	}
	rs, err := r.server(cmd, s.Port, index(index("services", i)+".realservers", len(s.RealServers)), opts)
	if err != nil {
		return err
	}
	s.RealServers = append(s.RealServers, rs)
	return nil
}

// unsupportedServer refuses the -a options of forwarding methods and
// features drlb does not have.
func (r *ipvsReader) unsupportedServer(opts map[string]opt) error {
	for _, m := range []string{"m", "i", "tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"} {
		if o, ok := opts[m]; ok {
			return r.errorf(o.name, o.name.text, "", "drlb does direct routing only (-g): masquerading (-m) and tunneling (-i) are not supported")
		}
	}
	for _, m := range []string{"x", "y"} {
		// 0 is no threshold; ipvsadm reads it with strtol (00, +0).
		if o, ok := opts[m]; ok {
			if n, err := strconv.Atoi(o.value.text); err == nil && n == 0 {
				continue
			}
			return r.errorf(o.name, o.name.text, o.value.text, "connection thresholds (-x, -y) are not supported")
		}
	}
	return nil
}

// server builds the real server -r names for a service on port, with the
// weight of -w (default 1), and marks where each value came from under
// path.
func (r *ipvsReader) server(cmd token, port uint16, path string, opts map[string]opt) (RealServer, error) {
	a, ro, err := r.serverAddr(cmd, port, opts)
	if err != nil {
		return RealServer{}, err
	}
	rs := RealServer{Address: a, Weight: DefaultWeight, Line: r.line}
	r.mark(path, ro.value, ro.name.text, ".address")
	if o, ok := opts["w"]; ok {
		w, err := strconv.Atoi(o.value.text)
		if err != nil {
			return rs, r.errorf(o.value, o.name.text, o.value.text, "weight must be an integer 0..65535")
		}
		rs.Weight = w
		r.mark(path+".weight", o.value, o.name.text)
	}
	return rs, nil
}

// serverAddr reads -r RIP[:PORT] for a service on port: direct routing
// keeps the port, so another one is refused.
func (r *ipvsReader) serverAddr(cmd token, port uint16, opts map[string]opt) (netip.Addr, opt, error) {
	ro, ok := opts["r"]
	if !ok {
		return netip.Addr{}, ro, r.errorf(cmd, cmd.text, "", "needs a real server: -r RIP[:PORT]")
	}
	a, p, hasPort, err := splitHostPort(ro.value.text)
	if err != nil {
		return a, ro, r.errorf(ro.value, ro.name.text, ro.value.text, "%v", err)
	}
	if hasPort && p != 0 && p != port {
		return a, ro, r.errorf(ro.value, ro.name.text, ro.value.text, "direct routing cannot change the port: the real server port must be the service port %d, 0 or left out", port)
	}
	return a, ro, nil
}

// mark records that path (and path+suffix for each suffix) came from t.
func (r *ipvsReader) mark(path string, t token, option string, suffixes ...string) {
	st := site{line: r.line, col: t.col, field: option, value: t.text}
	r.at[path] = st
	for _, s := range suffixes {
		r.at[path+s] = st
	}
}

// splitHostPort reads ADDR, ADDR:PORT, [ADDR] or [ADDR]:PORT as ipvsadm
// writes them (IPv6 always in brackets).
func splitHostPort(s string) (a netip.Addr, port uint16, hasPort bool, err error) {
	host, portText := s, ""
	if rest, ok := strings.CutPrefix(s, "["); ok {
		h, after, ok := strings.Cut(rest, "]")
		if !ok {
			return a, 0, false, errors.New("missing ] after an IPv6 address")
		}
		host = h
		if after != "" {
			p, ok := strings.CutPrefix(after, ":")
			if !ok {
				return a, 0, false, errors.New("expected :PORT after ]")
			}
			portText, hasPort = p, true
		}
	} else if strings.Count(s, ":") > 1 {
		return a, 0, false, errors.New("write an IPv6 address in brackets: [2001:db8::1]:80")
	} else if h, p, ok := strings.Cut(s, ":"); ok {
		host, portText, hasPort = h, p, true
	}
	a, err = parseAddr(host)
	if err != nil {
		if !strings.Contains(host, ":") && strings.ContainsFunc(host, isLetter) {
			err = errors.New("not a numeric address: use ipvsadm -Sn (numeric) output")
		}
		return a, 0, false, err
	}
	if hasPort {
		if port, err = parsePort(portText, true); err != nil {
			return a, 0, false, err
		}
	}
	return a, port, hasPort, nil
}

func isLetter(c rune) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
