package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drlb/drlb/scheduler"
)

// keepalived.conf: the LVS half of keepalived's configuration, read as
// keepalived + IPVS would run it in direct-routing mode.
//
//	virtual_server 198.18.0.100 80 {
//	    delay_loop 6
//	    lb_algo wrr
//	    lb_kind DR
//	    protocol TCP
//	    real_server 198.18.0.11 80 {
//	        weight 3
//	        HTTP_GET {
//	            url {
//	                path /healthz
//	                status_code 200
//	            }
//	            connect_timeout 3
//	        }
//	    }
//	}
//
// What is read: virtual_server (IP [PORT], [IPv6]:PORT or group NAME),
// virtual_server_group (addresses, ranges, prefixes), lb_algo / lvs_sched,
// lb_kind / lvs_method DR, protocol, persistence_timeout,
// persistence_granularity, the scheduler flags, sorry_server and
// sorry_server_inhibit, real_server with weight and inhibit_on_failure,
// the checkers TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK and DNS_CHECK
// (type, name) with their timing (delay_loop, connect_timeout, retry,
// nb_get_retry in HTTP_GET and SSL_GET, delay_before_retry, inherited
// from the virtual and real server as keepalived does), connect_port,
// virtualhost, global_defs' lvs_timeouts, and include.
//
// What would make drlb forward differently from keepalived + IPVS is an
// error naming the file, line, keyword and value: NAT or tunnel forwarding
// (keepalived's default is NAT, so lb_kind DR must be said), fwmark and
// SCTP services, schedulers drlb lacks, one-packet scheduling, persistence
// engines, connection thresholds, a quorum above 1 with a sorry server.
// The vrrp_instance holding the VIPs becomes the ha: block
// (keepalived_vrrp.go). Everything else keepalived knows (global_defs,
// notification and SMTP settings, track and notify scripts, MISC_CHECK and
// the other checkers...) is accepted with one Warning per ignored keyword.

// Keepalived's defaults, where they differ from drlb's YAML ones.
const (
	kaDelayLoop      = 60 * time.Second
	kaConnectTimeout = 5 * time.Second
	kaRetry          = 1 // retries after the first failure
	kaWebRetryDelay  = 3 * time.Second
	kaRetryDelay     = 1 * time.Second
	kaDNSRetry       = 3 // DNS_CHECK's own; its delay_before_retry defaults to delay_loop
	kaMaxGroupAddrs  = 4096
)

// kaSchedulers maps lb_algo names to drlb's schedulers (the same names).
var kaSchedulers = []string{"rr", "wrr", "lc", "wlc", "sh", "mh", "sed", "nq"}

// kaOpt is a setting that may be given, with where it was.
type kaOpt[T any] struct {
	v   T
	set bool
	tok kaToken // the value (or the keyword, for a value-less one)
	kw  string  // the keyword, where several name the setting (lb_kind, lvs_method)
}

// or is o when set, else p.
func (o kaOpt[T]) or(p kaOpt[T]) kaOpt[T] {
	if o.set {
		return o
	}
	return p
}

func (o kaOpt[T]) get(def T) T {
	if o.set {
		return o.v
	}
	return def
}

// kaTiming is what a virtual server passes to its real servers and a real
// server to its checkers.
type kaTiming struct {
	delayLoop, connectTimeout, retryDelay kaOpt[time.Duration]
	retry                                 kaOpt[int]
	host                                  kaOpt[string]
}

func (t kaTiming) under(p kaTiming) kaTiming {
	return kaTiming{
		delayLoop:      t.delayLoop.or(p.delayLoop),
		connectTimeout: t.connectTimeout.or(p.connectTimeout),
		retryDelay:     t.retryDelay.or(p.retryDelay),
		retry:          t.retry.or(p.retry),
		host:           t.host.or(p.host),
	}
}

// kaVIP is one address and port a virtual server serves.
type kaVIP struct {
	addr    netip.Addr
	port    uint16
	hasPort bool
	tok     kaToken
	dev     kaToken // a vrrp_instance address's "dev" (zero: none)
}

type kaGroup struct {
	name kaToken
	vips []kaVIP
}

type kaVS struct {
	key     kaToken
	group   kaToken // the group's name, for virtual_server group NAME
	vips    []kaVIP
	sched   kaOpt[string]
	flags   []kaFlagTok
	kind    kaOpt[string]
	proto   kaOpt[Protocol]
	persist kaOpt[time.Duration]
	gran    kaOpt[string]
	weight  kaOpt[int]
	quorum  kaOpt[int]
	inhibit kaOpt[bool]
	timing  kaTiming
	sorry   *kaSorry
	reals   []*kaRS
}

// kaFlagTok is a scheduler flag keyword and the scheduler the virtual
// server had where it was written: keepalived's lbflags_handler sets
// sh-port and sh-fallback only below lb_algo sh, mh-port and mh-fallback
// only below lb_algo mh.
type kaFlagTok struct {
	tok   kaToken
	sched string
}

type kaSorry struct {
	key     kaToken
	addr    kaToken
	ip      netip.Addr
	inhibit bool
	method  kaOpt[string]
	// inherit is the virtual server's method where sorry_server stands:
	// keepalived's alloc_ssvr copies it then, not at the block's end.
	inherit kaOpt[string]
}

type kaRS struct {
	key     kaToken
	addrTok kaToken
	ip      netip.Addr
	port    kaOpt[uint16]
	weight  kaOpt[int]
	method  kaOpt[string]
	// inherit is the virtual server's method where real_server stands:
	// keepalived's alloc_rs copies it then, not at the block's end.
	inherit kaOpt[string]
	inhibit kaOpt[bool]
	timing  kaTiming
	check   *kaChecker
}

type kaChecker struct {
	key      kaToken
	typ      string // tcp, http, https, udp
	port     kaOpt[uint16]
	timing   kaTiming
	urls     []kaURL
	payload  kaOpt[[]byte]
	require  kaOpt[bool]
	reply    kaOpt[[]byte]
	mask     []byte
	replyMin kaOpt[int]
	replyMax kaOpt[int]
	dnsName  kaOpt[string]
	dnsType  kaOpt[string]
}

// kaDNSTypes are the DNS_CHECK types keepalived knows (any case).
var kaDNSTypes = []string{"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"}

type kaURL struct {
	key    kaToken
	path   kaOpt[string]
	status kaOpt[[]StatusRange]
	digest kaOpt[string]
	host   kaOpt[string]
}

// kaReader turns the statement tree into a Config.
type kaReader struct {
	file   string
	c      *Config
	at     sites
	warns  []Warning
	groups map[string]*kaGroup
	// seen finds the virtual_server that defined a service first.
	seen map[serviceKey]kaToken
	// instances are the vrrp_instance blocks, mapped to ha: once the
	// virtual servers are read; vrrpVersion is global_defs' vrrp_version.
	instances   []*kaInstance
	vrrpVersion kaOpt[int]
	// vrrpSkipCheck is global_defs' vrrp_skip_check_adv_addr, the
	// instances' default for skip_check_adv_addr.
	vrrpSkipCheck kaOpt[bool]
	// budget bounds the services and real servers the virtual servers
	// expand to, as yamlReader's bounds aliases: a virtual_server_group
	// of a /20 times 500 real servers made 2 million real servers (4.5
	// GiB) from 22 KB.
	budget int
	warned map[Warning]bool // warns, for deduplication in constant time
}

func parseKeepalived(fsys kaFS, file string, data []byte) (*Config, sites, []Warning, error) {
	r := &kaReader{
		file:   file,
		c:      &Config{Timeouts: DefaultTimeouts, MaxConns: DefaultMaxConns},
		at:     sites{},
		groups: map[string]*kaGroup{},
		seen:   map[serviceKey]kaToken{},
		warned: map[Warning]bool{},
	}
	toks, err := lexKeepalived(fsys, file, data, r.warn)
	if err != nil {
		return nil, nil, r.warns, err
	}
	r.budget = 1000 + 8*len(toks)
	nodes, err := parseKATree(toks)
	if err != nil {
		return nil, nil, r.warns, err
	}
	if err := r.top(nodes); err != nil {
		return nil, nil, r.warns, err
	}
	inLineOrder(r.warns)
	if len(r.c.Services) == 0 {
		return nil, nil, r.warns, &Error{File: file, Field: "virtual_server", Msg: "no virtual_server with real servers: nothing to balance"}
	}
	return r.c, r.at, r.warns, nil
}

// warn records a warning once: a virtual_server over a group would
// repeat its real servers' warnings for every address.
func (r *kaReader) warn(w Warning) {
	if !r.warned[w] {
		r.warned[w] = true
		r.warns = append(r.warns, w)
	}
}

// ignore warns that n's keyword is ignored, and why.
func (r *kaReader) ignore(n *kaNode, why string) {
	r.warn(Warning{File: n.key.file, Line: n.key.line, Keyword: n.key.text, Msg: why})
}

// note warns about something that is not an ignored keyword.
func (r *kaReader) note(t kaToken, format string, a ...any) {
	r.warn(Warning{File: t.file, Line: t.line, Msg: fmt.Sprintf(format, a...)})
}

// place says where t was written, for a message placed at from: its
// line, with its file when that is another (an include).
func place(t, from kaToken) string {
	if t.file != from.file {
		return fmt.Sprintf("%s:%d", t.file, t.line)
	}
	return fmt.Sprintf("line %d", t.line)
}

func kaErr(t kaToken, field, value, format string, a ...any) error {
	return &Error{File: t.file, Line: t.line, Column: t.col, Field: field, Value: value, Msg: fmt.Sprintf(format, a...)}
}

// mark records that the config's path came from t, written as keyword.
func (r *kaReader) mark(path string, t kaToken, keyword string) {
	value := t.text
	if t.kind != kaWord || t.text == keyword {
		value = ""
	}
	r.at[path] = site{line: t.line, col: t.col, field: keyword, value: value, file: t.file}
}

// unknown warns about a keyword keepalived does not know either.
func (r *kaReader) unknown(n *kaNode, where string, known []string) {
	msg := "not a keepalived keyword " + where
	if s := suggest(n.key.text, known); s != "" {
		msg += fmt.Sprintf(", did you mean %q?", s)
	}
	r.ignore(n, msg)
}

// Node shape checks.

func noBlock(n *kaNode) error {
	if n.hasBlock {
		return kaErr(n.key, n.key.text, "", "takes no block")
	}
	return nil
}

func needBlock(n *kaNode) error {
	if !n.hasBlock {
		return kaErr(n.key, n.key.text, "", "needs a block: %s ... { ... }", n.key.text)
	}
	return nil
}

// one returns n's single value.
func one(n *kaNode) (kaToken, error) {
	if err := noBlock(n); err != nil {
		return kaToken{}, err
	}
	switch len(n.args) {
	case 0:
		return kaToken{}, kaErr(n.key, n.key.text, "", "needs a value")
	case 1:
		return n.args[0], nil
	}
	return kaToken{}, kaErr(n.args[1], n.key.text, n.args[1].text, "takes one value")
}

// kaTimer reads a keepalived <TIMER>: seconds, fractions allowed.
func kaTimer(n *kaNode) (kaOpt[time.Duration], error) {
	t, err := one(n)
	if err != nil {
		return kaOpt[time.Duration]{}, err
	}
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f > 365*24*3600 {
		return kaOpt[time.Duration]{}, kaErr(t, n.key.text, t.text, "not a time in seconds (like 3 or 2.5)")
	}
	return kaOpt[time.Duration]{v: time.Duration(math.Round(f*1e6)) * time.Microsecond, set: true, tok: t}, nil
}

// kaInt reads an integer in lo..hi.
func kaInt(n *kaNode, lo, hi int) (kaOpt[int], error) {
	t, err := one(n)
	if err != nil {
		return kaOpt[int]{}, err
	}
	v, err := strconv.Atoi(t.text)
	if err != nil || v < lo || v > hi {
		return kaOpt[int]{}, kaErr(t, n.key.text, t.text, "must be an integer %d..%d", lo, hi)
	}
	return kaOpt[int]{v: v, set: true, tok: t}, nil
}

// kaBool reads an optional <BOOL> (absent means true).
func kaBool(n *kaNode) (kaOpt[bool], error) {
	if err := noBlock(n); err != nil {
		return kaOpt[bool]{}, err
	}
	switch len(n.args) {
	case 0:
		return kaOpt[bool]{v: true, set: true, tok: n.key}, nil
	case 1:
	default:
		return kaOpt[bool]{}, kaErr(n.args[1], n.key.text, n.args[1].text, "takes at most one value")
	}
	t := n.args[0]
	switch strings.ToLower(t.text) {
	case "on", "true", "yes":
		return kaOpt[bool]{v: true, set: true, tok: t}, nil
	case "off", "false", "no":
		return kaOpt[bool]{v: false, set: true, tok: t}, nil
	}
	return kaOpt[bool]{}, kaErr(t, n.key.text, t.text, "must be on, off, true, false, yes or no")
}

// kaString reads the rest of the line as one string (virtualhost).
func kaString(n *kaNode) (kaOpt[string], error) {
	if err := noBlock(n); err != nil {
		return kaOpt[string]{}, err
	}
	if len(n.args) == 0 {
		return kaOpt[string]{}, kaErr(n.key, n.key.text, "", "needs a value")
	}
	parts := make([]string, len(n.args))
	for i, a := range n.args {
		parts[i] = a.text
	}
	return kaOpt[string]{v: strings.Join(parts, " "), set: true, tok: n.args[0]}, nil
}

// top reads the top-level statements: groups first, as keepalived looks
// them up only once the whole file is read.
func (r *kaReader) top(nodes []*kaNode) error {
	for _, n := range nodes {
		if n.key.text == "virtual_server_group" {
			if err := r.group(n); err != nil {
				return err
			}
		}
	}
	for _, n := range nodes {
		var err error
		switch k := n.key.text; {
		case k == "virtual_server_group":
		case k == "virtual_server":
			err = r.virtualServer(n)
		case k == "global_defs":
			err = r.globalDefs(n)
		case k == "vrrp_instance":
			err = r.vrrpInstance(n)
		case k == "vrrp_sync_group":
			r.ignore(n, "drlb runs one VRRP instance, the one holding the VIPs: there is nothing to keep in step")
		case k == "vrrp_script" || k == "vrrp_track_process" || k == "vrrp_track_file" || k == "track_file" || k == "track_process":
			r.ignore(n, "drlb's VRRP priority does not follow scripts, files or processes: it stays as configured")
		case strings.HasPrefix(k, "vrrp_") || k == "garp_group":
			r.ignore(n, "a keepalived VRRP setting drlb has no use for")
		case k == "static_ipaddress" || k == "static_routes" || k == "static_rules" ||
			k == "linkbeat_interfaces" || k == "interface_up_down_delays":
			r.ignore(n, "addresses, routes and links are the host's business, not drlb's")
		case k == "bfd_instance":
			r.ignore(n, "BFD is not supported")
		case k == "SSL":
			r.ignore(n, "SSL_GET checks connect without a client certificate and accept any server certificate")
		case k == "net_namespace" || k == "net_namespace_ipvs" || k == "namespace_with_ipsets" || k == "instance" ||
			k == "use_pid_dir" || k == "linkbeat_use_polling" || k == "child_wait_time":
			r.ignore(n, "keepalived's own process settings")
		default:
			r.unknown(n, "at the top level", []string{"global_defs", "virtual_server", "virtual_server_group", "vrrp_instance", "include"})
		}
		if err != nil {
			return err
		}
	}
	return r.vrrpMap()
}

// globalDefs reads lvs_timeouts and vrrp_version; every other global setting is
// keepalived's own.
func (r *kaReader) globalDefs(n *kaNode) error {
	if err := needBlock(n); err != nil {
		return err
	}
	for _, k := range n.block {
		name := k.key.text
		switch {
		case name == "lvs_timeouts":
			if err := r.lvsTimeouts(k); err != nil {
				return err
			}
		case strings.HasPrefix(name, "notification_email") || strings.HasPrefix(name, "smtp_") || name == "no_email_faults" ||
			strings.HasSuffix(name, "_notify_fifo") || name == "notify_fifo" || strings.HasPrefix(name, "notify_fifo"):
			r.ignore(k, "notifications are not sent: drlb logs every change of a real server's state")
		case name == "vrrp_version":
			if err := r.kaVRRPVersion(k); err != nil {
				return err
			}
		case name == "vrrp_skip_check_adv_addr":
			v, err := kaBool(k)
			if err != nil {
				return err
			}
			r.vrrpSkipCheck = v
		case strings.HasPrefix(name, "vrrp_garp_") || strings.HasPrefix(name, "garp_"):
			r.ignore(k, "drlb's own timing: a new master sends 5 gratuitous ARP / unsolicited NA per VIP at once and 5 more 2 s later")
		case strings.HasPrefix(name, "vrrp_") || strings.HasPrefix(name, "garp_") || strings.HasPrefix(name, "gna_") ||
			strings.HasSuffix(name, "_prio_no_advert") || strings.HasSuffix(name, "_prio_send_advert"):
			r.ignore(k, "a keepalived VRRP setting drlb has no use for")
		case name == "lvs_sync_daemon":
			r.ignore(k, kaSyncWhy)
		case strings.HasPrefix(name, "lvs_flush"):
			r.ignore(k, "drlb keeps no kernel IPVS table to flush")
		default:
			r.ignore(k, "a keepalived global setting drlb has no use for")
		}
	}
	return nil
}

// lvsTimeouts reads lvs_timeouts [tcp SECS] [tcpfin SECS] [udp SECS].
func (r *kaReader) lvsTimeouts(n *kaNode) error {
	if err := noBlock(n); err != nil {
		return err
	}
	if len(n.args) == 0 || len(n.args)%2 != 0 {
		return kaErr(n.key, n.key.text, "", "takes pairs: tcp SECS, tcpfin SECS, udp SECS")
	}
	for i := 0; i < len(n.args); i += 2 {
		name, val := n.args[i], n.args[i+1]
		var d *time.Duration
		var path string
		switch name.text {
		case "tcp":
			d, path = &r.c.Timeouts.TCPEstablished, "timeouts.tcp"
		case "tcpfin":
			d, path = &r.c.Timeouts.TCPFinWait, "timeouts.tcp_fin"
		case "udp":
			d, path = &r.c.Timeouts.UDP, "timeouts.udp"
		default:
			return kaErr(name, n.key.text, name.text, "unknown timeout (valid: tcp, tcpfin, udp)")
		}
		secs, err := strconv.ParseUint(val.text, 10, 32)
		if err != nil || secs == 0 {
			return kaErr(val, n.key.text, val.text, "%s timeout must be a whole number of seconds above 0", name.text)
		}
		*d = time.Duration(secs) * time.Second
		r.mark(path, val, n.key.text)
	}
	return nil
}

// group reads a virtual_server_group.
func (r *kaReader) group(n *kaNode) error {
	if len(n.args) != 1 {
		return kaErr(n.key, n.key.text, "", "needs a name: virtual_server_group NAME { ... }")
	}
	if err := needBlock(n); err != nil {
		return err
	}
	name := n.args[0]
	if prev, dup := r.groups[name.text]; dup {
		return kaErr(name, n.key.text, name.text, "group defined twice (first at %s:%d)", prev.name.file, prev.name.line)
	}
	g := &kaGroup{name: name}
	total := 0
	for _, e := range n.block {
		if e.key.text == "fwmark" {
			return kaErr(e.key, "fwmark", strings.Join(tokTexts(e.args), " "), "firewall-mark services are not supported: drlb matches protocol, VIP and port")
		}
		if err := noBlock(e); err != nil {
			return err
		}
		if len(e.args) > 1 {
			return kaErr(e.args[1], "virtual_server_group", e.args[1].text, "an entry is ADDRESS[-RANGE] [PORT]")
		}
		addrs, err := kaAddrRange(e.key.text)
		if err != nil {
			return kaErr(e.key, "virtual_server_group", e.key.text, "%v", err)
		}
		if total += len(addrs); total > kaMaxGroupAddrs {
			return kaErr(e.key, "virtual_server_group", e.key.text, "the group holds more than %d addresses", kaMaxGroupAddrs)
		}
		v := kaVIP{tok: e.key}
		if len(e.args) == 1 {
			p, err := parsePort(e.args[0].text, false)
			if err != nil {
				return kaErr(e.args[0], "virtual_server_group", e.args[0].text, "%v", err)
			}
			v.port, v.hasPort = p, true
		}
		for _, a := range addrs {
			v.addr = a
			g.vips = append(g.vips, v)
		}
	}
	r.groups[name.text] = g
	return nil
}

func tokTexts(ts []kaToken) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.text
	}
	return out
}

// kaAddrRange reads a group address: ADDR, ADDR-LAST (the last byte of an
// IPv4 address in decimal, the last 16 bits of an IPv6 one in hex),
// ADDR-ADDR, or a prefix ADDR/LEN (every address in it).
func kaAddrRange(s string) ([]netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, errors.New("not an address prefix like 198.18.0.8/29")
		}
		if p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return nil, errors.New("write the prefix as plain IPv4 or IPv6, without a zone")
		}
		p = p.Masked()
		if p.Addr().BitLen()-p.Bits() > 12 {
			return nil, fmt.Errorf("the prefix holds more than %d addresses", kaMaxGroupAddrs)
		}
		var out []netip.Addr
		for a := p.Addr(); a.IsValid() && p.Contains(a); a = a.Next() {
			out = append(out, a)
		}
		return out, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	a, err := parseAddr(first)
	if err != nil {
		return nil, err
	}
	if !isRange {
		return []netip.Addr{a}, nil
	}
	var b netip.Addr
	if strings.ContainsAny(last, ".:") {
		if b, err = parseAddr(last); err != nil {
			return nil, fmt.Errorf("range end: %v", err)
		}
	} else if a.Is4() {
		n, err := strconv.ParseUint(last, 10, 8)
		if err != nil {
			return nil, errors.New("an IPv4 range ends in a number 0..255 (198.18.0.3-10)")
		}
		b4 := a.As4()
		b4[3] = byte(n)
		b = netip.AddrFrom4(b4)
	} else {
		n, err := strconv.ParseUint(last, 16, 16)
		if err != nil {
			return nil, errors.New("an IPv6 range ends in hex 0..ffff (2001:2::2-9)")
		}
		b16 := a.As16()
		b16[14], b16[15] = byte(n>>8), byte(n)
		b = netip.AddrFrom16(b16)
	}
	if b.Is4() != a.Is4() || b.Less(a) {
		return nil, errors.New("the range ends before it starts")
	}
	var out []netip.Addr
	for x := a; ; x = x.Next() {
		out = append(out, x)
		if x == b {
			return out, nil
		}
		if len(out) >= kaMaxGroupAddrs {
			return nil, fmt.Errorf("the range holds more than %d addresses", kaMaxGroupAddrs)
		}
	}
}

// kaHostPort reads IP [PORT], [IPv6] [PORT], [IPv6]:PORT or IPv4:PORT.
func kaHostPort(kw kaToken, args []kaToken) (netip.Addr, uint16, bool, error) {
	if len(args) == 0 {
		return netip.Addr{}, 0, false, kaErr(kw, kw.text, "", "needs an address: %s IP [PORT]", kw.text)
	}
	if len(args) > 2 {
		return netip.Addr{}, 0, false, kaErr(args[2], kw.text, args[2].text, "takes an address and a port, no more")
	}
	t := args[0]
	text := t.text
	var a netip.Addr
	var port uint16
	hasPort := false
	var err error
	if strings.HasPrefix(text, "[") || strings.Count(text, ":") == 1 {
		a, port, hasPort, err = splitHostPort(text)
	} else {
		a, err = parseAddr(text)
	}
	if err != nil {
		return netip.Addr{}, 0, false, kaErr(t, kw.text, text, "%v", err)
	}
	if len(args) == 2 {
		p := args[1]
		if hasPort {
			return netip.Addr{}, 0, false, kaErr(p, kw.text, p.text, "the port is given twice")
		}
		if port, err = parsePort(p.text, false); err != nil {
			return netip.Addr{}, 0, false, kaErr(p, kw.text, p.text, "%v", err)
		}
		hasPort = true
	}
	return a, port, hasPort, nil
}

// virtualServer reads one virtual_server block into a service per address.
func (r *kaReader) virtualServer(n *kaNode) error {
	if err := needBlock(n); err != nil {
		return err
	}
	vs := &kaVS{key: n.key}
	switch {
	case len(n.args) > 0 && n.args[0].text == "fwmark":
		return kaErr(n.args[0], "virtual_server", strings.Join(tokTexts(n.args), " "), "firewall-mark services are not supported: drlb matches protocol, VIP and port")
	case len(n.args) > 0 && n.args[0].text == "group":
		if len(n.args) != 2 {
			return kaErr(n.key, "virtual_server", "", "virtual_server group takes a group name")
		}
		g, ok := r.groups[n.args[1].text]
		if !ok {
			return kaErr(n.args[1], "virtual_server group", n.args[1].text, "no virtual_server_group of that name (defined: %s)", strings.Join(r.sortedGroupNames(), ", "))
		}
		vs.group, vs.vips = n.args[1], g.vips
	default:
		a, port, hasPort, err := kaHostPort(n.key, n.args)
		if err != nil {
			return err
		}
		vs.vips = []kaVIP{{addr: a, port: port, hasPort: hasPort, tok: n.args[0]}}
	}
	for _, k := range n.block {
		if err := r.vsKeyword(vs, k); err != nil {
			return err
		}
	}
	return r.services(vs)
}

func (r *kaReader) vsKeyword(vs *kaVS, k *kaNode) error {
	var err error
	switch name := k.key.text; name {
	case "lb_algo", "lvs_sched":
		var t kaToken
		if t, err = one(k); err == nil {
			if !slices.Contains(kaSchedulers, t.text) {
				return kaErr(t, name, t.text, "drlb has no such scheduler (supported: %s)", strings.Join(kaSchedulers, ", "))
			}
			vs.sched = kaOpt[string]{v: t.text, set: true, tok: t}
		}
	case "lb_kind", "lvs_method":
		err = r.kaMethod(&vs.kind, k)
	case "protocol":
		var t kaToken
		if t, err = one(k); err == nil {
			switch strings.ToUpper(t.text) {
			case "TCP":
				vs.proto = kaOpt[Protocol]{v: TCP, set: true, tok: t}
			case "UDP":
				vs.proto = kaOpt[Protocol]{v: UDP, set: true, tok: t}
			case "SCTP":
				return kaErr(t, name, t.text, "SCTP services are not supported: only TCP and UDP")
			default:
				return kaErr(t, name, t.text, "must be TCP or UDP")
			}
		}
	case "persistence_timeout":
		if err = noBlock(k); err != nil {
			return err
		}
		switch len(k.args) {
		case 0:
			vs.persist = kaOpt[time.Duration]{v: DefaultPersistence, set: true, tok: k.key}
		case 1:
			t := k.args[0]
			secs, perr := strconv.ParseUint(t.text, 10, 32)
			if perr != nil {
				return kaErr(t, name, t.text, "must be a whole number of seconds")
			}
			if secs == 0 {
				// pto_handler reads 1 and up: 0 is "persistence_timeout
				// invalid", ignored, keeping the timeout set so far.
				r.ignore(k, "keepalived takes 1 or more: it ignores 0 and keeps the timeout set so far (none unless set), and so does drlb")
				return nil
			}
			vs.persist = kaOpt[time.Duration]{v: time.Duration(secs) * time.Second, set: true, tok: t}
		default:
			return kaErr(k.args[1], name, k.args[1].text, "takes one value")
		}
	case "persistence_granularity":
		var t kaToken
		if t, err = one(k); err == nil {
			vs.gran = kaOpt[string]{v: t.text, set: true, tok: t}
		}
	case "persistence_engine":
		var t kaToken
		t, err = one(k)
		if err == nil {
			err = kaErr(t, name, t.text, "persistence engines are not supported")
		}
	case "ops":
		err = kaErr(k.key, name, "", "one-packet scheduling is not supported")
	case "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback":
		if err = noBlock(k); err == nil {
			vs.flags = append(vs.flags, kaFlagTok{tok: k.key, sched: vs.sched.v})
		}
	case "hashed":
		r.ignore(k, "an IPVS internal flag with no effect on scheduling")
	case "weight":
		// keepalived's vs_weight_handler takes 1..65535 and, for 0,
		// logs an error and keeps the weight it had (1 unless set):
		// a 0 taken here would quiesce every real server without a
		// weight of its own.
		var w kaOpt[int]
		if w, err = kaInt(k, 0, 65535); err == nil {
			if w.v == 0 {
				r.warn(Warning{File: w.tok.file, Line: w.tok.line, Keyword: "weight",
					Msg: "0 is outside a virtual_server's 1..65535: keepalived refuses it and keeps the weight it had (1 unless set)"})
			} else {
				vs.weight = w
			}
		}
	case "quorum":
		vs.quorum, err = kaInt(k, 0, math.MaxInt32)
	case "inhibit_on_failure":
		// keepalived's vs_inhibit_handler takes no value and turns it
		// on whatever follows (only a real_server's reads a <BOOL>):
		// read as a <BOOL> here, "inhibit_on_failure off" removed
		// failing servers that keepalived sets to weight 0.
		if err = noBlock(k); err == nil {
			vs.inhibit = kaOpt[bool]{v: true, set: true, tok: k.key}
			if len(k.args) > 0 && !slices.Contains([]string{"on", "true", "yes"}, k.args[0].text) {
				r.ignore(k, fmt.Sprintf("keepalived takes no value here (a virtual_server's inhibit_on_failure is on once written): it ignores %q and inhibits, and so does drlb", k.args[0].text))
			}
		}
	case "sorry_server":
		err = r.sorryServer(vs, k)
	case "sorry_server_inhibit":
		if err = noBlock(k); err == nil {
			// keepalived's ssvri_handler sets it on the sorry server
			// read so far, and ignores it before one.
			if vs.sorry == nil {
				r.ignore(k, "keepalived ignores it before (or without) the sorry_server line")
				return nil
			}
			vs.sorry.inhibit = true
		}
	case "sorry_server_lvs_method":
		// As ss_forwarding_handler: without a sorry server read so far,
		// ignored (applied here, it sent a sorry server keepalived runs
		// with the virtual server's NAT by direct routing).
		if vs.sorry == nil {
			r.ignore(k, "keepalived ignores it before (or without) the sorry_server line")
			return nil
		}
		err = r.kaMethod(&vs.sorry.method, k)
	case "real_server":
		var rs *kaRS
		if rs, err = r.realServer(k); err == nil {
			rs.inherit = vs.kind
			vs.reals = append(vs.reals, rs)
		}
	case "alpha":
		r.ignore(k, "drlb starts real servers up and checks them at once")
	case "omega", "quorum_up", "quorum_down":
		r.ignore(k, "quorum scripts are not run: drlb logs every change of a real server's state")
	case "hysteresis":
		r.ignore(k, "only a quorum above 1 would use it, and drlb's is 1")
	case "ha_suspend":
		r.ignore(k, "drlb never holds the VIP, so checks always run")
	case "smtp_alert", "snmp_name":
		r.ignore(k, "notifications and SNMP are not supported")
	case "warmup":
		r.ignore(k, "checks start at once")
	case "ip_family":
		r.ignore(k, "only fwmark services use it")
	default:
		if ok, err := r.timingKeyword(&vs.timing, k, kaInServer); ok || err != nil {
			return err
		}
		r.unknown(k, "in virtual_server", []string{"lb_algo", "lb_kind", "protocol", "persistence_timeout",
			"persistence_granularity", "delay_loop", "sorry_server", "real_server", "connect_timeout", "retry",
			"delay_before_retry", "inhibit_on_failure", "virtualhost", "quorum"})
	}
	return err
}

// kaMethod reads lb_kind / lvs_method: DR, NAT or TUN [...] into *o.
//
// keepalived compares the method with strcmp: "dr" or "Dr" is an
// "unknown [dr] routing method", logged and ignored, so the method stays
// what it was: a virtual server's default NAT, or for a real or sorry
// server the virtual server's. Read as DR, lb_kind dr made drlb route
// directly a service keepalived runs as NAT. Such a value is ignored here
// too, with a warning; it leaves its token in an unset *o, for services'
// error when it leaves a virtual server without a method. An ignored
// value does not undo one given before it, as in keepalived.
func (r *kaReader) kaMethod(o *kaOpt[string], n *kaNode) error {
	if err := noBlock(n); err != nil {
		return err
	}
	if len(n.args) == 0 {
		return kaErr(n.key, n.key.text, "", "needs a value: DR")
	}
	t := n.args[0]
	switch t.text {
	case "DR":
		if len(n.args) > 1 {
			return kaErr(n.args[1], n.key.text, n.args[1].text, "DR takes no options")
		}
	case "NAT", "TUN":
	default:
		if m := strings.ToUpper(t.text); m == "DR" || m == "NAT" || m == "TUN" {
			r.ignore(n, fmt.Sprintf("keepalived takes %s in capitals only: it ignores %q as an unknown routing method", m, t.text))
			if !o.set {
				*o = kaOpt[string]{tok: t, kw: n.key.text}
			}
			return nil
		}
		return kaErr(t, n.key.text, t.text, "must be DR, NAT or TUN")
	}
	*o = kaOpt[string]{v: t.text, set: true, tok: t, kw: n.key.text}
	return nil
}

// kaTimingIn says which block timingKeyword reads: keepalived's handlers
// for the shared keywords differ between them.
type kaTimingIn uint8

const (
	kaInServer     kaTimingIn = iota // virtual_server, real_server
	kaInChecker                      // TCP_CHECK, UDP_CHECK, DNS_CHECK
	kaInWebChecker                   // HTTP_GET, SSL_GET: the only place keepalived knows nb_get_retry
)

// timingKeyword reads what virtual servers, real servers and checkers
// share; it reports whether k was one.
func (r *kaReader) timingKeyword(t *kaTiming, k *kaNode, in kaTimingIn) (bool, error) {
	hostOK, webChecker := in != kaInChecker, in == kaInWebChecker
	var err error
	switch k.key.text {
	case "delay_loop":
		t.delayLoop, err = kaTimer(k)
	case "connect_timeout":
		t.connectTimeout, err = kaTimer(k)
	case "delay_before_retry":
		t.retryDelay, err = kaTimer(k)
	case "retry":
		var v kaOpt[int]
		if v, err = kaInt(k, 0, maxRetries-1); err == nil && v.v == 0 && in == kaInServer {
			// check_parser.c's vs_retry_handler and rs_retry_handler
			// read 1 and up ("retry value invalid - 0", ignored); only
			// a checker's retry_handler takes 0. Read as 0 here, it took
			// a server out after 1 failure where keepalived waits for 2
			// (or the checker's own default).
			r.ignore(k, "keepalived takes 1 or more in virtual_server and real_server: it ignores retry 0 there, and so does drlb")
			return true, nil
		}
		if err == nil {
			t.retry = v
		}
	case "nb_get_retry":
		// keepalived installs nb_get_retry (deprecated) in HTTP_GET and
		// SSL_GET only; in TCP_CHECK, UDP_CHECK, DNS_CHECK, real_server
		// and virtual_server it is an unknown keyword, ignored, so the
		// retry count stays the default (or an inherited retry). Read as
		// retry there, the "nb_get_retry 3" of countless TCP_CHECK
		// examples took a dead server out after 4 failures where
		// keepalived takes it out after 2.
		if !webChecker {
			r.ignore(k, "keepalived knows nb_get_retry only in HTTP_GET and SSL_GET (elsewhere the keyword is retry): it ignores it here, and so does drlb")
			return true, nil
		}
		t.retry, err = kaInt(k, 0, maxRetries-1)
	case "virtualhost":
		if !hostOK {
			return false, nil
		}
		t.host, err = kaString(k)
	default:
		return false, nil
	}
	return true, err
}

func (r *kaReader) sorryServer(vs *kaVS, k *kaNode) error {
	a, port, hasPort, err := kaHostPort(k.key, k.args)
	if err != nil {
		return err
	}
	if err := noBlock(k); err != nil {
		return err
	}
	if vs.sorry != nil {
		return kaErr(k.key, k.key.text, k.args[0].text, "a virtual_server has one sorry server (the first is at %s)", place(vs.sorry.key, k.key))
	}
	vs.sorry = &kaSorry{key: k.key, addr: k.args[0], ip: a, inherit: vs.kind}
	if hasPort {
		for _, v := range vs.vips {
			if v.port != port {
				r.note(k.key, "sorry_server port %d differs from the service port %d: direct routing keeps the service port, as keepalived resets it", port, v.port)
				break
			}
		}
	}
	return nil
}

func (r *kaReader) realServer(k *kaNode) (*kaRS, error) {
	if err := needBlock(k); err != nil {
		return nil, err
	}
	a, port, hasPort, err := kaHostPort(k.key, k.args)
	if err != nil {
		return nil, err
	}
	rs := &kaRS{key: k.key, addrTok: k.args[0], ip: a}
	if hasPort {
		rs.port = kaOpt[uint16]{v: port, set: true, tok: k.args[len(k.args)-1]}
	}
	for _, c := range k.block {
		var err error
		switch name := c.key.text; name {
		case "weight":
			rs.weight, err = kaInt(c, 0, 65535)
		case "lvs_method":
			err = r.kaMethod(&rs.method, c)
		case "inhibit_on_failure":
			rs.inhibit, err = kaBool(c)
		case "uthreshold", "lthreshold":
			var v kaOpt[int]
			if v, err = kaInt(c, 0, math.MaxInt32); err == nil && v.v != 0 {
				err = kaErr(v.tok, name, v.tok.text, "connection thresholds are not supported")
			}
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "UDP_CHECK", "DNS_CHECK":
			var ck *kaChecker
			if ck, err = r.checker(c); err == nil && ck != nil {
				if rs.check != nil {
					// keepalived takes the server down when any of its
					// checkers fails: keeping one would keep a server
					// keepalived removes.
					err = kaErr(c.key, name, "", "a second checker (the %s at %s:%d is the first): drlb runs one check per real server, and keepalived takes the server down when any fails; keep the one that matters", rs.check.key.text, rs.check.key.file, rs.check.key.line)
				} else {
					rs.check = ck
				}
			}
		case "MISC_CHECK", "SMTP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK":
			r.ignore(c, "drlb runs TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK and DNS_CHECK only: this check does not judge the real server")
		case "notify_up", "notify_down":
			r.ignore(c, "notify scripts are not run: drlb logs every change of a real server's state")
		case "alpha":
			r.ignore(c, "drlb starts real servers up and checks them at once")
		case "warmup":
			r.ignore(c, "checks start at once")
		case "smtp_alert", "snmp_name":
			r.ignore(c, "notifications and SNMP are not supported")
		default:
			var ok bool
			if ok, err = r.timingKeyword(&rs.timing, c, kaInServer); !ok && err == nil {
				r.unknown(c, "in real_server", []string{"weight", "inhibit_on_failure", "lvs_method", "TCP_CHECK", "HTTP_GET",
					"SSL_GET", "UDP_CHECK", "DNS_CHECK", "connect_timeout", "retry", "delay_before_retry", "delay_loop", "virtualhost"})
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// checker reads a TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK or DNS_CHECK
// block; nil when keepalived would drop it (an HTTP_GET without a URL).
func (r *kaReader) checker(k *kaNode) (*kaChecker, error) {
	if err := needBlock(k); err != nil {
		return nil, err
	}
	if len(k.args) > 0 {
		return nil, kaErr(k.args[0], k.key.text, k.args[0].text, "takes no value before its block")
	}
	ck := &kaChecker{key: k.key, typ: map[string]string{"TCP_CHECK": "tcp", "HTTP_GET": "http", "SSL_GET": "https", "UDP_CHECK": "udp", "DNS_CHECK": "dns"}[k.key.text]}
	web := ck.typ == "http" || ck.typ == "https"
	in := kaInChecker
	if web {
		in = kaInWebChecker
	}
	for _, c := range k.block {
		var err error
		switch name := c.key.text; {
		case name == "connect_port":
			var t kaToken
			if t, err = one(c); err == nil {
				p, perr := parsePort(t.text, false)
				if perr != nil || p == 0 {
					return nil, kaErr(t, name, t.text, "must be a port 1..65535")
				}
				ck.port = kaOpt[uint16]{v: p, set: true, tok: t}
			}
		case name == "connect_ip":
			r.ignore(c, "drlb checks the real server's own address")
		case name == "bindto" || name == "bind_if" || name == "bind_port" || name == "fwmark":
			r.ignore(c, "checks leave from the director's own address, unmarked")
		case name == "warmup":
			r.ignore(c, "checks start at once")
		case name == "alpha":
			r.ignore(c, "drlb starts real servers up and checks them at once")
		case name == "log_all_failures":
			r.ignore(c, "drlb logs changes of state")
		case web && name == "url":
			var u kaURL
			if u, err = r.url(c); err == nil {
				if !u.path.set {
					r.ignore(c, "a url without a path is dropped, as keepalived does")
				} else {
					ck.urls = append(ck.urls, u)
				}
			}
		case web && (name == "http_protocol" || name == "enable_sni" || name == "sni_name" || name == "fast_recovery" || name == "tls_compliant"):
			r.ignore(c, "drlb's checks speak HTTP/1.1 without SNI and check every URL each time")
		case ck.typ == "udp" && name == "payload":
			s, serr := kaString(c)
			if serr != nil {
				return nil, serr
			}
			d, _, herr := parseHex(s.v, false)
			if herr != nil {
				return nil, kaErr(s.tok, name, s.v, "%v", herr)
			}
			ck.payload = kaOpt[[]byte]{v: d, set: true, tok: s.tok}
		case ck.typ == "udp" && name == "require_reply":
			if err = noBlock(c); err != nil {
				return nil, err
			}
			ck.require = kaOpt[bool]{v: true, set: true, tok: c.key}
			if len(c.args) > 0 {
				s, _ := kaString(c)
				d, m, herr := parseHex(s.v, true)
				if herr != nil {
					return nil, kaErr(s.tok, name, s.v, "%v (x matches any digit)", herr)
				}
				ck.reply, ck.mask = kaOpt[[]byte]{v: d, set: true, tok: s.tok}, m
			}
		case ck.typ == "udp" && name == "min_reply_length":
			ck.replyMin, err = kaInt(c, 0, 65535)
		case ck.typ == "udp" && name == "max_reply_length":
			ck.replyMax, err = kaInt(c, 0, 65535)
		case ck.typ == "dns" && name == "type":
			var t kaToken
			if t, err = one(c); err == nil {
				if up := strings.ToUpper(t.text); slices.Contains(kaDNSTypes, up) {
					ck.dnsType = kaOpt[string]{v: up, set: true, tok: t}
				} else {
					r.ignore(c, fmt.Sprintf("keepalived knows no DNS_CHECK type %q, only %s: it asks for %s, as drlb does",
						t.text, strings.Join(kaDNSTypes, ", "), ck.dnsType.get(DefaultDNSType)))
				}
			}
		case ck.typ == "dns" && name == "name":
			var t kaToken
			if t, err = one(c); err == nil {
				switch {
				case ck.dnsName.set:
					r.ignore(c, fmt.Sprintf("the name is given twice: keepalived keeps the first, at %s", place(ck.dnsName.tok, c.key)))
				case t.text != "." && (strings.HasPrefix(t.text, ".") || strings.Contains(t.text, "..")):
					r.ignore(c, fmt.Sprintf("the name %q has an empty label: keepalived ignores it and asks for %q", t.text, DefaultDNSName))
				default:
					ck.dnsName = kaOpt[string]{v: t.text, set: true, tok: t}
				}
			}
		default:
			var ok bool
			if ok, err = r.timingKeyword(&ck.timing, c, in); !ok && err == nil {
				r.unknown(c, "in "+k.key.text, []string{"connect_port", "connect_timeout", "retry", "delay_before_retry",
					"delay_loop", "url", "virtualhost", "payload", "require_reply", "type", "name"})
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if web && len(ck.urls) == 0 {
		r.ignore(k, "it has no url with a path, and keepalived drops such a checker")
		return nil, nil
	}
	return ck, nil
}

func (r *kaReader) url(k *kaNode) (kaURL, error) {
	u := kaURL{key: k.key}
	if err := needBlock(k); err != nil {
		return u, err
	}
	for _, c := range k.block {
		var err error
		switch name := c.key.text; name {
		case "path":
			var t kaToken
			if t, err = one(c); err == nil {
				u.path = kaOpt[string]{v: t.text, set: true, tok: t}
			}
		case "digest":
			var t kaToken
			if t, err = one(c); err == nil {
				d, derr := parseDigest(t.text)
				if derr != nil {
					return u, kaErr(t, name, t.text, "%v", derr)
				}
				u.digest = kaOpt[string]{v: d, set: true, tok: t}
			}
		case "status_code":
			var s kaOpt[string]
			if s, err = kaString(c); err == nil {
				// Each code or range on its own, so that the error names
				// the wrong one, at its column: validation sees the line
				// as a whole and named its first value (a good one).
				var st []StatusRange
				for _, a := range c.args {
					one, serr := parseStatus(a.text)
					if serr != nil {
						return u, kaErr(a, name, a.text, "%v", serr)
					}
					for _, r := range one { // one, unless quoted with blanks
						if r.Min < 100 || r.Max > 599 || r.Min > r.Max {
							return u, kaErr(a, name, a.text, "must be HTTP statuses 100..599 (ranges low-high)")
						}
					}
					st = append(st, one...)
				}
				if u.status.set { // several status_code lines add up
					st = append(u.status.v, st...)
				}
				u.status = kaOpt[[]StatusRange]{v: st, set: true, tok: s.tok}
			}
		case "virtualhost":
			// keepalived's url_virtualhost_handler: this URL's Host
			// header, before the checker's, real and virtual server's.
			// Ignored (as it was), drlb probed with another Host than
			// keepalived: a working server could be taken for dead.
			u.host, err = kaString(c)
		case "regex", "regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
			r.ignore(c, "drlb does not match the body against a regex: the status (and a digest) decide")
		case "tls_compliant":
			r.ignore(c, "drlb's checks end TLS as Go does")
		default:
			r.unknown(c, "in url", []string{"path", "digest", "status_code", "virtualhost"})
		}
		if err != nil {
			return u, err
		}
	}
	return u, nil
}

// services turns a virtual server into one service per address.
func (r *kaReader) services(vs *kaVS) error {
	if len(vs.reals) == 0 {
		r.note(vs.key, "virtual_server without a real_server: ignored, as keepalived ignores it")
		return nil
	}
	if !vs.proto.set {
		return kaErr(vs.key, "protocol", "", "missing: keepalived's default differs between versions (UDP in 2.x): write protocol TCP or protocol UDP")
	}
	sched := vs.sched.get(DefaultScheduler)
	var opts scheduler.Options
	for _, f := range vs.flags {
		r.kaFlag(&opts, sched, f)
	}
	if vs.quorum.set && vs.quorum.v > 1 && vs.sorry != nil {
		return kaErr(vs.quorum.tok, "quorum", vs.quorum.tok.text, "a quorum above 1 with a sorry server is not supported: drlb's sorry server stands in only when no real server can take connections (quorum 1)")
	}
	if vs.quorum.set && (vs.quorum.v > 1 || vs.sorry == nil) {
		r.warn(Warning{File: vs.quorum.tok.file, Line: vs.quorum.tok.line, Keyword: "quorum", Msg: "it matters only with a sorry server, and drlb's quorum is 1"})
	}
	// Forwarding methods: keepalived's default is NAT.
	// A real or sorry server without a method of its own has the one the
	// virtual server had where the server is written (inherit), as
	// keepalived's alloc_rs and alloc_ssvr copy it: an lb_kind DR below
	// it leaves it NAT there.
	method := func(own, inherit kaOpt[string], key, addr kaToken) error {
		m := own.or(inherit)
		ignored := func(o kaOpt[string]) error {
			t := o.tok
			return kaErr(t, o.kw, t.text, "keepalived takes DR, NAT and TUN in capitals only: it ignores %q and runs the service as NAT, its default, and drlb does direct routing only: write DR", t.text)
		}
		switch {
		case !m.set && inherit.tok.text != "":
			return ignored(inherit)
		case !m.set && vs.kind.set:
			t := vs.kind.tok
			return kaErr(addr, key.text, addr.text, "comes before %s %s (%s): keepalived gives a server the method written above it, so it runs this one as NAT, its default, and drlb does direct routing only: move %s above the servers", vs.kind.kw, t.text, place(t, key), vs.kind.kw)
		case !m.set && vs.kind.tok.text != "":
			return ignored(vs.kind)
		case !m.set:
			return kaErr(vs.key, "lb_kind", "", "missing: keepalived's default is NAT, and drlb does direct routing only: add lb_kind DR")
		case m.v != "DR":
			// m.kw: the error names lvs_method or
			// sorry_server_lvs_method when that is what was written.
			return kaErr(m.tok, m.kw, m.tok.text, "drlb does direct routing (DR) only: NAT and tunneling (TUN) are not supported")
		}
		return nil
	}
	var reals []*kaRS
	for _, rs := range vs.reals {
		if err := method(rs.method, rs.inherit, rs.key, rs.addrTok); err != nil {
			return err
		}
		dup := false
		for _, o := range reals {
			if o.ip == rs.ip {
				r.note(rs.key, "real_server %s is given twice (first at %s): the second is dropped, as keepalived does", rs.ip, place(o.key, rs.key))
				dup = true
			}
		}
		if !dup {
			reals = append(reals, rs)
		}
	}
	if vs.sorry != nil {
		if err := method(vs.sorry.method, vs.sorry.inherit, vs.sorry.key, vs.sorry.addr); err != nil {
			return err
		}
	}
	persist := r.persistence(vs)
	for _, v := range vs.vips {
		if err := r.service(vs, v, sched, opts, persist, reals); err != nil {
			return err
		}
	}
	return nil
}

// persistence is the persistence timeout of every service of vs, decided
// for the virtual_server as a whole, as keepalived does: a
// persistence_timeout above 0; else 360 s when persistence_granularity is
// set (pgr_handler sets it), or when an address has no port
// (validate_check_config: for a group, one entry without a port makes the
// whole virtual_server persistent, not that entry alone); else none.
func (r *kaReader) persistence(vs *kaVS) kaOpt[time.Duration] {
	if vs.persist.set && vs.persist.v > 0 {
		return vs.persist
	}
	if vs.gran.set {
		r.note(vs.gran.tok, "persistence_granularity without persistence_timeout: persistence_timeout %d, as keepalived sets it", int(DefaultPersistence/time.Second))
		return kaOpt[time.Duration]{v: DefaultPersistence, set: true}
	}
	for _, v := range vs.vips {
		if v.port != 0 {
			continue
		}
		if vs.group.text != "" {
			r.note(v.tok, "virtual_server_group %s has an address without a port (%s): the virtual_server at %s gets persistence_timeout %d for all its services, as keepalived sets it", vs.group.text, v.tok.text, place(vs.key, v.tok), int(DefaultPersistence/time.Second))
		} else {
			r.note(v.tok, "service %s has no port: persistence_timeout %d, as keepalived sets it", (&Service{Protocol: vs.proto.v, VIP: v.addr, Port: v.port}).String(), int(DefaultPersistence/time.Second))
		}
		return kaOpt[time.Duration]{v: DefaultPersistence, set: true}
	}
	return kaOpt[time.Duration]{}
}

// kaFlag applies one scheduler flag keyword as IPVS does: sh-x and mh-x
// are the same bits (flag-1 fallback, flag-2 port), so they mean what the
// scheduler in use makes of them; a flag no scheduler reads does nothing.
//
// sh-port and sh-fallback count only below lb_algo sh, mh-port and
// mh-fallback only below lb_algo mh: keepalived's lbflags_handler tests
// the scheduler set so far, and ignores them elsewhere (above the lb_algo
// line, "sh-port only applies to sh scheduler - ignoring"). Read against
// the final scheduler, an sh-port above lb_algo sh hashed the port where
// keepalived's IPVS service does not.
func (r *kaReader) kaFlag(o *scheduler.Options, sched string, ft kaFlagTok) {
	f := ft.tok
	bit := map[string]int{"flag-1": 1, "sh-fallback": 1, "mh-fallback": 1, "flag-2": 2, "sh-port": 2, "mh-port": 2, "flag-3": 3}[f.text]
	if want, _, _ := strings.Cut(f.text, "-"); (want == "sh" || want == "mh") && ft.sched != want {
		at := "before any lb_algo"
		if ft.sched != "" {
			at = "under lb_algo " + ft.sched
		}
		r.ignore(&kaNode{key: f}, fmt.Sprintf("keepalived sets %s only below lb_algo %s, and it stands %s: it ignores it, and so does drlb", f.text, want, at))
		return
	}
	switch {
	case !hashing(sched):
		r.ignore(&kaNode{key: f}, fmt.Sprintf("only sh and mh read scheduler flags, this service uses %s", sched))
	case bit == 3:
		r.ignore(&kaNode{key: f}, "neither sh nor mh reads flag-3")
	case bit == 1:
		o.Fallback = true
	default:
		o.HashPort = true
	}
}

// lineOf is t's line for the Line fields (messages say "(line N)" of the
// file being loaded, config.LineNote): 0 for a token of an include,
// whose line would name a line of another file.
func (r *kaReader) lineOf(t kaToken) int {
	if t.file != r.file {
		return 0
	}
	return t.line
}

// service adds the service for one address of a virtual server.
func (r *kaReader) service(vs *kaVS, v kaVIP, sched string, so scheduler.Options, persist kaOpt[time.Duration], reals []*kaRS) error {
	i := len(r.c.Services)
	path := index("services", i)
	s := Service{
		VIP: v.addr, Port: v.port, Protocol: vs.proto.v, Scheduler: sched, SchedOptions: so,
		PersistenceBits: fullBits(v.addr.Is6()), Line: r.lineOf(vs.key),
	}
	if r.budget -= 1 + len(reals); r.budget < 0 {
		return kaErr(vs.key, "virtual_server", vs.key.text, "expands to more services and real servers than this file spells out (%d services so far): a virtual_server_group of many addresses times many real_server blocks; split it", i)
	}
	k := serviceKey{s.Protocol, s.VIP, s.Port}
	if prev, dup := r.seen[k]; dup {
		return kaErr(v.tok, "virtual_server", v.tok.text, "the same service (%s) as the virtual_server at %s:%d", s.String(), prev.file, prev.line)
	}
	r.seen[k] = vs.key
	r.mark(path, vs.key, "virtual_server")
	r.mark(path+".vip", v.tok, "virtual_server")
	r.mark(path+".port", v.tok, "virtual_server")
	r.mark(path+".protocol", vs.proto.tok, "protocol")
	if vs.sched.set {
		r.mark(path+".scheduler", vs.sched.tok, "lb_algo")
	}
	if len(vs.flags) > 0 {
		r.mark(path+".flags", vs.flags[0].tok, vs.flags[0].tok.text)
	}
	s.Persistence = persist.v
	if persist.tok.text != "" {
		r.mark(path+".persistence", persist.tok, "persistence_timeout")
	}
	if vs.gran.set {
		bits, err := parseIPVSNetmask(vs.gran.v, v.addr.Is6())
		if err != nil {
			return kaErr(vs.gran.tok, "persistence_granularity", vs.gran.v, "%v", err)
		}
		s.PersistenceBits = bits
		r.mark(path+".persistence_netmask", vs.gran.tok, "persistence_granularity")
	}
	for j, rs := range reals {
		rpath := path + ".realservers[" + strconv.Itoa(j) + "]"
		real := RealServer{Address: rs.ip, Weight: rs.weight.or(vs.weight).get(DefaultWeight), Line: r.lineOf(rs.key)}
		r.mark(rpath, rs.key, "real_server")
		r.mark(rpath+".address", rs.addrTok, "real_server")
		if w := rs.weight.or(vs.weight); w.set {
			r.mark(rpath+".weight", w.tok, "weight")
		}
		if rs.port.set && rs.port.v != v.port && v.port != 0 {
			r.note(rs.port.tok, "real_server port %d differs from the service port %d: direct routing keeps the service port (%d is used for health checks only), as keepalived resets it", rs.port.v, v.port, rs.port.v)
		}
		if rs.check != nil {
			c, err := r.check(vs, rs, v, rpath+".check")
			if err != nil {
				return err
			}
			real.Check = c
		}
		s.RealServers = append(s.RealServers, real)
	}
	if ss := vs.sorry; ss != nil {
		s.SorryServer = &SorryServer{Address: ss.ip, Inhibit: ss.inhibit, Line: r.lineOf(ss.key)}
		r.mark(path+".sorry_server", ss.key, "sorry_server")
		r.mark(path+".sorry_server.address", ss.addr, "sorry_server")
	}
	r.c.Services = append(r.c.Services, s)
	return nil
}

// check builds a real server's check for the service at v.
func (r *kaReader) check(vs *kaVS, rs *kaRS, v kaVIP, path string) (*Check, error) {
	ck := rs.check
	t := ck.timing.under(rs.timing).under(vs.timing)
	web := ck.typ == "http" || ck.typ == "https"
	interval := t.delayLoop.get(kaDelayLoop)
	retry, retryDelay := kaRetry, kaRetryDelay
	switch {
	case web:
		retryDelay = kaWebRetryDelay
	case ck.typ == "dns":
		retry, retryDelay = kaDNSRetry, interval
	}
	c := &Check{
		Type:       ck.typ,
		Interval:   interval,
		Timeout:    t.connectTimeout.get(kaConnectTimeout),
		Retries:    t.retry.get(retry) + 1,
		RetryDelay: t.retryDelay.get(retryDelay),
		Inhibit:    rs.inhibit.or(vs.inhibit).get(false),
	}
	if t.retryDelay.set && c.RetryDelay < minCheckPeriod {
		// keepalived reads it down to 0 (read_timer's minimum): retry at
		// once. drlb's checks wait at least minCheckPeriod; the file
		// stays valid, as it is for keepalived.
		r.note(t.retryDelay.tok, "delay_before_retry %s is under drlb's shortest retry delay: the next try comes %s after a failure",
			t.retryDelay.tok.text, minCheckPeriod)
		c.RetryDelay = minCheckPeriod
	}
	r.mark(path, ck.key, ck.key.text)
	r.mark(path+".type", ck.key, ck.key.text)
	for _, m := range []struct {
		field, kw string
		tok       kaToken
		set       bool
	}{
		{".interval", "delay_loop", t.delayLoop.tok, t.delayLoop.set},
		{".timeout", "connect_timeout", t.connectTimeout.tok, t.connectTimeout.set},
		{".retries", "retry", t.retry.tok, t.retry.set},
		{".retry_delay", "delay_before_retry", t.retryDelay.tok, t.retryDelay.set},
	} {
		if m.set {
			r.mark(path+m.field, m.tok, m.kw)
		}
	}
	// keepalived probes the real server's port as written; drlb's check
	// port 0 means the service port.
	switch {
	case ck.port.set:
		c.Port = ck.port.v
		r.mark(path+".port", ck.port.tok, "connect_port")
	case rs.port.set && rs.port.v != v.port:
		c.Port = rs.port.v
		r.mark(path+".port", rs.port.tok, "real_server")
	}
	if web {
		if t.host.set {
			c.Host = t.host.v
			r.mark(path+".host", t.host.tok, "virtualhost")
		}
		for k, u := range ck.urls {
			url := URL{Path: u.path.v, Status: u.status.get([]StatusRange{{200, 299}}), Digest: u.digest.v, Host: u.host.v}
			upath := path
			if len(ck.urls) > 1 {
				upath = path + ".urls[" + strconv.Itoa(k) + "]"
			}
			r.mark(upath+".path", u.path.tok, "path")
			if u.status.set {
				r.mark(upath+".status", u.status.tok, "status_code")
			}
			if u.digest.set {
				r.mark(upath+".digest", u.digest.tok, "digest")
			}
			if u.host.set { // by index: path+".host" is the checker's (validate's url)
				r.mark(path+".urls["+strconv.Itoa(k)+"].host", u.host.tok, "virtualhost")
			}
			c.URLs = append(c.URLs, url)
		}
	}
	if ck.typ == "udp" {
		c.Payload = ck.payload.v
		c.RequireReply = ck.require.v
		c.Reply, c.ReplyMask = ck.reply.v, ck.mask
		c.ReplyMin, c.ReplyMax = ck.replyMin.get(0), ck.replyMax.get(DefaultUDPReplyMax)
		for _, m := range []struct {
			field, kw string
			tok       kaToken
			set       bool
		}{
			{".payload", "payload", ck.payload.tok, ck.payload.set},
			{".reply", "require_reply", ck.reply.tok, ck.reply.set},
			{".reply_min_length", "min_reply_length", ck.replyMin.tok, ck.replyMin.set},
			{".reply_max_length", "max_reply_length", ck.replyMax.tok, ck.replyMax.set},
		} {
			if m.set {
				r.mark(path+m.field, m.tok, m.kw)
			}
		}
	}
	if ck.typ == "dns" {
		c.DNSName, c.DNSType = ck.dnsName.get(DefaultDNSName), ck.dnsType.get(DefaultDNSType)
		if ck.dnsName.set {
			r.mark(path+".name", ck.dnsName.tok, "name")
		}
		if ck.dnsType.set {
			r.mark(path+".record", ck.dnsType.tok, "type")
		}
	}
	return c, nil
}

// isKeepalived tells a keepalived.conf: a name ending in .conf, or a first
// word that only keepalived starts a file with.
func isKeepalived(name string, data []byte) bool {
	if strings.HasSuffix(name, ".conf") {
		return true
	}
	for _, line := range strings.Split(strings.TrimPrefix(string(data[:min(len(data), 1<<16)]), "\ufeff"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		word := line
		if i := strings.IndexAny(line, " \t{"); i >= 0 {
			word = line[:i]
		}
		switch {
		case word == "global_defs", word == "virtual_server", word == "virtual_server_group",
			strings.HasPrefix(word, "vrrp_"), isIncludeWord(word):
			return true
		}
		return false
	}
	return false
}

// sortedGroupNames is for messages listing the groups.
func (r *kaReader) sortedGroupNames() []string {
	names := make([]string, 0, len(r.groups))
	for n := range r.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
