package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/drlb/drlb/scheduler"
	"golang.org/x/net/http/httpguts"
)

// Limits that keep a config from asking for absurd resources.
const (
	maxMaxConns    = 1 << 30
	maxPersistence = 31 * 24 * time.Hour // ipvsadm's MAX_TIMEOUT
	// maxDrainTimeout matches: longer is "never", which 0 says.
	maxDrainTimeout = maxPersistence
	minCheckPeriod  = 10 * time.Millisecond
	maxRetries      = 1000
	maxURLs         = 64
	maxUDPPayload   = 65507 // the largest UDP payload over IPv4
)

// site is where a value was written, for messages: a YAML node or an
// ipvsadm token.
type site struct {
	line, col int
	field     string // the YAML field path, or the ipvsadm option
	value     string // the text as written
	// file is where the value was written when it is not the file
	// named in messages otherwise (a keepalived.conf include).
	file string
}

// sites maps YAML-style field paths (services[0].realservers[1].weight) to
// where the reader found them. Both readers fill it, so one validation
// speaks in each format's own terms.
type sites map[string]site

// Validate checks a Config built in code the way Parse checks a file. The
// first problem comes back as an *Error whose Field is the YAML field path
// and whose Line is the Service or RealServer Line. Defaults are not
// applied: every field must already hold its final value.
func (c *Config) Validate() error { return validate(c, "", nil) }

type validator struct {
	file string
	at   sites
}

// fail places a problem with path: at its own site, else at the nearest
// enclosing one, else at line (from the struct) with value as formatted
// from the struct.
func (v *validator) fail(path string, line int, value string, format string, args ...any) error {
	e := &Error{File: v.file, Line: line, Field: path, Value: value, Msg: fmt.Sprintf(format, args...)}
	for p := path; p != ""; p = parentPath(p) {
		s, ok := v.at[p]
		if !ok {
			continue
		}
		e.Line, e.Column = s.line, s.col
		if s.file != "" {
			e.File = s.file
		}
		if p == path || s.field != p {
			// The value's own site, or an ipvsadm token (which names
			// the option the user wrote, not our path). A YAML
			// mapping has no text of its own: keep the formatted one.
			e.Field = s.field
			if s.value != "" {
				e.Value = s.value
			}
		}
		break
	}
	return e
}

// parentPath strips the last component: a.b[1].c -> a.b[1] -> a.b -> a.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func validate(c *Config, file string, at sites) error { return validateConfig(c, file, at, false) }

// validateConfig is validate; emptyOK accepts a table without services,
// which a file may not be but an edit may leave (ipvsadm -C, the last -D).
func validateConfig(c *Config, file string, at sites, emptyOK bool) error {
	v := &validator{file: file, at: at}
	if c.Interface != "" && !validIfName(c.Interface) {
		return v.fail("interface", 0, c.Interface, "not a Linux interface name (1-15 characters, no '/', ':' or spaces)")
	}
	if c.VLAN < 0 || c.VLAN > 4094 {
		return v.fail("vlan", 0, strconv.Itoa(c.VLAN), "must be a VLAN ID 1..4094 (0 or absent: untagged)")
	}
	if c.MaxConns < 1 || c.MaxConns > maxMaxConns {
		return v.fail("max_conns", 0, strconv.Itoa(c.MaxConns), "must be 1..%d", maxMaxConns)
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{
		{"tcp", c.Timeouts.TCPEstablished},
		{"tcp_synrecv", c.Timeouts.TCPSynRecv},
		{"tcp_fin", c.Timeouts.TCPFinWait},
		{"tcp_close", c.Timeouts.TCPClose},
		{"udp", c.Timeouts.UDP},
	} {
		if t.d <= 0 {
			return v.fail("timeouts."+t.name, 0, t.d.String(), "must be more than 0")
		}
		if t.d%time.Second != 0 {
			// The connection table keeps whole seconds (a 500ms
			// timeout lasted up to 1.5s) and ipvsadm -L --timeout
			// printed it as 0, as IPVS keeps its timeouts.
			return v.fail("timeouts."+t.name, 0, t.d.String(), "must be whole seconds, as ipvsadm --set")
		}
	}
	if len(c.Services) == 0 && !emptyOK {
		return v.fail("services", 0, "", "no services defined")
	}
	seen := make(map[serviceKey]int, len(c.Services))
	for i := range c.Services {
		s := &c.Services[i]
		path := "services[" + strconv.Itoa(i) + "]"
		if err := v.service(s, path); err != nil {
			return err
		}
		k := serviceKey{s.Protocol, s.VIP, s.Port}
		if j, dup := seen[k]; dup {
			return v.fail(path, s.Line, s.String(), "duplicate service: services[%d]%s is the same", j, LineNote(c.Services[j].Line))
		}
		seen[k] = i
	}
	if err := v.servers(c); err != nil {
		return err
	}
	if err := v.bgp(c); err != nil {
		return err
	}
	return v.ha(c)
}

type serviceKey struct {
	proto Protocol
	vip   netip.Addr
	port  uint16
}

func (v *validator) service(s *Service, path string) error {
	if msg := hostAddrProblem(s.VIP); msg != "" {
		return v.fail(path+".vip", s.Line, addrText(s.VIP), "%s", msg)
	}
	if s.Protocol != TCP && s.Protocol != UDP {
		return v.fail(path+".protocol", s.Line, s.Protocol.String(), "must be tcp or udp")
	}
	if s.Port == 0 && s.Persistence == 0 {
		return v.fail(path+".port", s.Line, "0", "port 0 (every port of the VIP) needs persistence, as in ipvsadm")
	}
	if field, err := schedulerProblem(s); err != nil {
		return v.fail(path+"."+field, s.Line, s.Scheduler, "%v", err)
	}
	if s.Scheduler == "mh" {
		// Maglev gives every server with a weight a slot at least: the
		// forwarder refuses to build a smaller table (scheduler.New), so
		// without this drlb check said ok and drlb run (or the reload)
		// failed, naming no line.
		m, n := s.SchedOptions.TableSize, 0
		if m == 0 {
			m = scheduler.DefaultTableSize
		}
		for _, r := range s.RealServers {
			if r.Weight > 0 {
				n++
			}
		}
		if n > m {
			return v.fail(path+".mh_table_size", s.Line, strconv.Itoa(m), "a maglev table of %d slots is smaller than the %d real servers with a weight: each needs a slot (give mh_table_size a prime of at least %d)", m, n, n)
		}
	}
	switch {
	case s.Persistence < 0 || s.Persistence > maxPersistence:
		return v.fail(path+".persistence", s.Line, s.Persistence.String(), "must be 0s..%s", maxPersistence)
	case s.Persistence%time.Second != 0:
		return v.fail(path+".persistence", s.Line, s.Persistence.String(), "must be whole seconds, as ipvsadm -p")
	}
	if s.DrainTimeout < 0 || s.DrainTimeout > maxDrainTimeout {
		return v.fail(path+".drain_timeout", s.Line, s.DrainTimeout.String(), "must be 0s..%s", maxDrainTimeout)
	}
	full := 32
	if s.VIP.Is6() {
		full = 128
	}
	if s.PersistenceBits < 0 || s.PersistenceBits > full {
		return v.fail(path+".persistence_netmask", s.Line, strconv.Itoa(s.PersistenceBits), "prefix length must be 1..%d for this VIP", full)
	}
	if s.PersistenceBits == 0 {
		// IPVS would send every client to one server; drlb's template
		// keys and its workers' split of clients read 0 as "none".
		return v.fail(path+".persistence_netmask", s.Line, "0", "a /0 persistence netmask (every client to one server, as IPVS does) is not supported: prefix length must be 1..%d; for one server for all, configure that server alone", full)
	}
	if s.PersistenceBits != full && s.Persistence == 0 {
		return v.fail(path+".persistence_netmask", s.Line, strconv.Itoa(s.PersistenceBits), "a persistence netmask needs persistence")
	}
	seen := make(map[netip.Addr]int, len(s.RealServers))
	for j := range s.RealServers {
		r := &s.RealServers[j]
		rpath := path + ".realservers[" + strconv.Itoa(j) + "]"
		if err := v.realServer(s, r, rpath); err != nil {
			return err
		}
		if k, dup := seen[r.Address]; dup {
			return v.fail(rpath+".address", r.Line, r.Address.String(), "duplicate real server: realservers[%d]%s is the same", k, LineNote(s.RealServers[k].Line))
		}
		seen[r.Address] = j
	}
	if ss := s.SorryServer; ss != nil {
		return v.sorryServer(s, ss, path+".sorry_server")
	}
	return nil
}

// servers checks what the services say about one address against each
// other (v.service checks each service alone; one real server may serve
// several services):
//   - a real or sorry server is no VIP of any service: the director
//     answers ARP/NDP for every VIP and sends gratuitous ARP for it (or,
//     with bgp:, routes it to itself), so it would take that server's own
//     address from it on the LAN, and the frames it forwards "to" it;
//   - one address has one static MAC: the neighbor table holds one entry
//     per address (the last static MAC won there) while each service
//     forwarded to its own, so two services sent one server's frames to
//     two stations.
func (v *validator) servers(c *Config) error {
	vips := make(map[netip.Addr]int, len(c.Services))
	for i := range c.Services {
		if _, ok := vips[c.Services[i].VIP]; !ok {
			vips[c.Services[i].VIP] = i
		}
	}
	type staticMAC struct {
		mac  net.HardwareAddr
		path string
		line int
	}
	macs := map[netip.Addr]staticMAC{}
	check := func(svc int, addr netip.Addr, mac net.HardwareAddr, line int, path string) error {
		// Blame the later of the two, as for duplicates (with drlb ctl,
		// a -A just given is the later).
		if k, ok := vips[addr]; ok && v.vipWrittenLater(k, svc, path) {
			return v.fail("services["+strconv.Itoa(k)+"].vip", c.Services[k].Line, addr.String(), "is the address of %s%s: the director answers for a VIP, so it would take that server's address from it", path, LineNote(line))
		} else if ok {
			return v.fail(path+".address", line, addr.String(), "is the VIP of services[%d]%s: the director answers for a VIP, so it would take this server's address from it", k, LineNote(c.Services[k].Line))
		}
		if mac == nil {
			return nil
		}
		if m, ok := macs[addr]; !ok {
			macs[addr] = staticMAC{mac, path, line}
		} else if !bytes.Equal(m.mac, mac) {
			return v.fail(path+".mac", line, mac.String(), "%s%s gives %s the MAC %s: one address has one MAC", m.path, LineNote(m.line), addr, m.mac)
		}
		return nil
	}
	for i := range c.Services {
		s := &c.Services[i]
		path := "services[" + strconv.Itoa(i) + "]"
		for j := range s.RealServers {
			r := &s.RealServers[j]
			if err := check(i, r.Address, r.MAC, r.Line, path+".realservers["+strconv.Itoa(j)+"]"); err != nil {
				return err
			}
		}
		if ss := s.SorryServer; ss != nil {
			if err := check(i, ss.Address, ss.MAC, ss.Line, path+".sorry_server"); err != nil {
				return err
			}
		}
	}
	return nil
}

// vipWrittenLater reports whether services[k]'s VIP was written after the
// server at path (of services[svc]), the one to blame when they clash.
// The service order is the reading order of YAML and keepalived.conf (a
// server stands inside its service), but not of the rest: an ipvsadm -a
// for an earlier service may follow a later -A, and a drlb ctl edit
// places only what it was given (-a into an earlier service). Blaming by
// index there named a -A line, or a services[1].vip the user never
// typed, instead of the -a (its line, its -r) that made the clash.
func (v *validator) vipWrittenLater(k, svc int, path string) bool {
	vs, vok := v.at["services["+strconv.Itoa(k)+"].vip"]
	ss, sok := v.at[path+".address"]
	switch {
	case vok != sok: // a drlb ctl edit: the one it was given
		return vok
	case vok && vs.file == ss.file && vs.line > 0 && ss.line > 0 && vs.line != ss.line:
		return vs.line > ss.line
	}
	return k > svc
}

func (v *validator) sorryServer(s *Service, ss *SorryServer, path string) error {
	if msg := hostAddrProblem(ss.Address); msg != "" {
		return v.fail(path+".address", ss.Line, addrText(ss.Address), "%s", msg)
	}
	switch {
	case ss.Address.Is4() != s.VIP.Is4():
		return v.fail(path+".address", ss.Line, ss.Address.String(), "address family differs from the VIP %s", s.VIP)
	case ss.Address == s.VIP:
		return v.fail(path+".address", ss.Line, ss.Address.String(), "the sorry server cannot be the VIP itself")
	}
	return v.mac(ss.MAC, ss.Line, path+".mac")
}

// mac checks a static neighbor entry (nil = none).
func (v *validator) mac(m net.HardwareAddr, line int, path string) error {
	if m == nil {
		return nil
	}
	if msg := MACProblem(m); msg != "" {
		return v.fail(path, line, m.String(), "%s", msg)
	}
	return nil
}

// MACProblem says what makes m unfit as a real server's (or sorry
// server's) static MAC, "" when nothing does: frames go to it as they
// are, so a multicast, broadcast or zero MAC would reach every station or
// none. drlb run's -r mac= checks it too.
func MACProblem(m net.HardwareAddr) string {
	switch {
	case len(m) != 6:
		return "must be a 6-byte MAC address"
	case m[0]&1 != 0:
		return "must be a unicast MAC (this one is multicast or broadcast)"
	case string(m) == string(make(net.HardwareAddr, 6)):
		return "must not be all zeros"
	}
	return ""
}

func (v *validator) realServer(s *Service, r *RealServer, path string) error {
	if msg := hostAddrProblem(r.Address); msg != "" {
		return v.fail(path+".address", r.Line, addrText(r.Address), "%s", msg)
	}
	switch {
	case r.Address.Is4() != s.VIP.Is4():
		return v.fail(path+".address", r.Line, r.Address.String(), "address family differs from the VIP %s", s.VIP)
	case r.Address == s.VIP:
		return v.fail(path+".address", r.Line, r.Address.String(), "a real server cannot be the VIP itself")
	case r.Weight < 0 || r.Weight > 65535:
		return v.fail(path+".weight", r.Line, strconv.Itoa(r.Weight), "must be 0..65535")
	}
	if err := v.mac(r.MAC, r.Line, path+".mac"); err != nil {
		return err
	}
	if r.Check != nil {
		return v.check(s, r.Check, r.Line, path+".check")
	}
	return nil
}

func (v *validator) check(s *Service, c *Check, line int, path string) error {
	web := c.Type == "http" || c.Type == "https"
	udp := c.Type == "udp"
	dns := c.Type == "dns"
	switch {
	case c.Type != "tcp" && !udp && !web && !dns:
		return v.fail(path+".type", line, c.Type, "must be tcp, http, https, udp or dns")
	case c.Port == 0 && s.Port == 0:
		return v.fail(path+".port", line, "0", "a check needs a port when the service port is 0")
	case web && len(c.URLs) == 0:
		return v.fail(path+".path", line, "", "an %s check needs a URL path", c.Type)
	case web && len(c.URLs) > maxURLs:
		return v.fail(path+".urls", line, strconv.Itoa(len(c.URLs)), "at most %d URLs", maxURLs)
	case !web && len(c.URLs) > 0:
		f := v.written(path, ".path", ".status", ".digest", ".urls")
		return v.fail(path+f, line, c.URLs[0].Path, "only http and https checks have a%s", strings.ReplaceAll(f, ".", " "))
	case !web && c.Host != "":
		return v.fail(path+".host", line, c.Host, "only http and https checks have a host")
	case web && strings.ContainsAny(c.Host, " \t\r\n"):
		return v.fail(path+".host", line, c.Host, "must not contain spaces or line breaks")
	case web && c.Host != "" && !httpguts.ValidHostHeader(c.Host):
		// What net/http refuses to send: every probe would fail with
		// "invalid Host header", the server taken for down.
		return v.fail(path+".host", line, c.Host, "not a valid HTTP Host header: a name or an address, with :port if any")
	case !udp && (c.Payload != nil || c.RequireReply || c.Reply != nil || c.ReplyMask != nil || c.ReplyMin != 0 || c.ReplyMax != 0):
		f := v.written(path, ".payload", ".require_reply", ".reply", ".reply_min_length", ".reply_max_length")
		return v.fail(path+f, line, "", "only udp checks send a payload or expect a reply")
	case udp && len(c.Payload) > maxUDPPayload:
		return v.fail(path+".payload", line, strconv.Itoa(len(c.Payload))+" bytes", "at most %d bytes", maxUDPPayload)
	case udp && c.ReplyMask != nil && len(c.ReplyMask) != len(c.Reply):
		return v.fail(path+".reply", line, "", "the reply mask must be as long as the reply")
	case udp && c.Reply != nil && !c.RequireReply:
		return v.fail(path+".reply", line, hexText(c.Reply), "an expected reply needs require_reply")
	case udp && (c.ReplyMin < 0 || c.ReplyMax < c.ReplyMin || c.ReplyMax > 65535):
		// Blame the length that is wrong: a min the file wrote above the
		// max it left at its default (255) is the min's fault; naming
		// reply_max_length "255", which the file never wrote, sent the
		// reader to the check's first line looking for it.
		f, n := ".reply_max_length", c.ReplyMax
		if c.ReplyMin < 0 || c.ReplyMax <= 65535 && v.has(path+".reply_min_length") && !v.has(path+".reply_max_length") {
			f, n = ".reply_min_length", c.ReplyMin
		}
		return v.fail(path+f, line, strconv.Itoa(n), "reply lengths must be 0 <= min (%d) <= max (%d) <= 65535", c.ReplyMin, c.ReplyMax)
	case !dns && (c.DNSName != "" || c.DNSType != "" || v.has(path+".name") || v.has(path+".record")):
		f, value := ".name", c.DNSName
		if c.DNSName == "" && !v.has(path+".name") {
			f, value = ".record", c.DNSType
		}
		return v.fail(path+f, line, value, "only dns checks ask for a name or a record type")
	case dns && dnsNameProblem(c.DNSName) != "":
		return v.fail(path+".name", line, c.DNSName, "not a domain name to ask for: %s", dnsNameProblem(c.DNSName))
	case dns && !knownDNSType(c.DNSType):
		return v.fail(path+".record", line, c.DNSType, "must be a record type drlb asks for: %s", dnsTypeNames())
	case c.Interval < minCheckPeriod:
		return v.fail(path+".interval", line, c.Interval.String(), "must be at least %s", minCheckPeriod)
	case c.Timeout < minCheckPeriod:
		return v.fail(path+".timeout", line, c.Timeout.String(), "must be at least %s", minCheckPeriod)
	case c.RetryDelay < minCheckPeriod:
		return v.fail(path+".retry_delay", line, c.RetryDelay.String(), "must be at least %s", minCheckPeriod)
	case c.Retries < 1 || c.Retries > maxRetries:
		return v.fail(path+".retries", line, strconv.Itoa(c.Retries), "must be 1..%d", maxRetries)
	}
	for i, u := range c.URLs {
		p := path
		if len(c.URLs) > 1 {
			p = path + ".urls[" + strconv.Itoa(i) + "]"
		}
		// A URL's host is named by its index even when it is the only
		// URL: check.host is the check's own.
		if err := v.url(&u, line, p, path+".urls["+strconv.Itoa(i)+"].host"); err != nil {
			return err
		}
	}
	return nil
}

// has reports whether the file set the field at path.
func (v *validator) has(path string) bool {
	_, ok := v.at[path]
	return ok
}

// written returns the first of the fields (suffixes of path) the file
// set, or the first one when it set none of them.
func (v *validator) written(path string, fields ...string) string {
	for _, f := range fields {
		if _, ok := v.at[path+f]; ok {
			return f
		}
	}
	return fields[0]
}

func (v *validator) url(u *URL, line int, path, hostPath string) error {
	switch {
	case !strings.HasPrefix(u.Path, "/"):
		return v.fail(path+".path", line, u.Path, "must start with /")
	case strings.ContainsAny(u.Path, " \t\r\n"):
		return v.fail(path+".path", line, u.Path, "must not contain spaces or line breaks")
	case strings.ContainsFunc(u.Path, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return v.fail(path+".path", line, u.Path, "must not contain control characters: the request line carries the path as written")
	case strings.HasPrefix(u.Path, "//") && !sendsAsWritten(u.Path):
		return v.fail(path+".path", line, u.Path, "a path starting with // goes out as a URL path: it must not contain # or a %% not followed by two hex digits, nor characters a URL escapes (write them %%-escaped, such as %%7B for {)")
	case len(u.Status) == 0:
		return v.fail(path+".status", line, "", "no accepted status")
	case u.Digest != "" && !isMD5Hex(u.Digest):
		return v.fail(path+".digest", line, u.Digest, "must be an MD5 digest: 32 lower-case hex digits")
	case strings.ContainsAny(u.Host, " \t\r\n"):
		return v.fail(hostPath, line, u.Host, "must not contain spaces or line breaks")
	case u.Host != "" && !httpguts.ValidHostHeader(u.Host):
		return v.fail(hostPath, line, u.Host, "not a valid HTTP Host header: a name or an address, with :port if any")
	}
	for _, r := range u.Status {
		if r.Min < 100 || r.Max > 599 || r.Min > r.Max {
			return v.fail(path+".status", line, FormatStatus(u.Status), "must be HTTP statuses 100..599 (ranges low-high)")
		}
	}
	return nil
}

// sendsAsWritten reports whether a path starting with "//", which a check
// sends as a URL path (health's requestURL: any other goes out as it is
// written), goes out as written that way: the request line Go builds from
// the parsed URL is the path itself (no fragment cut, no bad escape, no
// character such as {, | or é escaped).
func sendsAsWritten(p string) bool {
	u, err := url.Parse("http://host" + p)
	return err == nil && !strings.Contains(p, "#") && u.Host == "host" && u.RequestURI() == p
}

// hostAddrProblem says why a can be neither a VIP nor a real server, or "".
func hostAddrProblem(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "an address is required"
	case a.Zone() != "":
		return "an IPv6 zone is not allowed here"
	case a.Is4In6():
		return "IPv4-mapped IPv6 address: write it as " + a.Unmap().String()
	case a.IsUnspecified():
		return "the unspecified address is not a host"
	case a.IsLoopback():
		return "a loopback address never reaches the network"
	case a.IsMulticast():
		return "a multicast address is not a host"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address is not a host"
	}
	return ""
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// LineNote is how a message places a value in its file: " (line N)"
// after it, or "" for no line (a value not set in the file, a default,
// or one set in code).
func LineNote(line int) string {
	if line <= 0 {
		return ""
	}
	return " (line " + strconv.Itoa(line) + ")"
}

// validIfName follows the kernel's dev_valid_name.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\r\n\v\f")
}

// errMissing is the message for a required field that is absent.
var errMissing = errors.New("required")
