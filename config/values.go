package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Value parsers shared by the YAML and ipvsadm readers. They check syntax
// only; what a well-formed value may mean is validate's job, so both formats
// and Validate agree on it.

// parseAddr reads a numeric IPv4 or IPv6 address, refusing the forms that
// make two spellings of one address (zones, IPv4-mapped IPv6).
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errors.New("not a numeric IPv4 or IPv6 address")
	}
	if a.Zone() != "" {
		return netip.Addr{}, errors.New("an IPv6 zone is not allowed here")
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("IPv4-mapped IPv6 address: write it as %s", a.Unmap())
	}
	return a, nil
}

// parseMAC reads a 6-byte MAC address (the forms net.ParseMAC knows).
func parseMAC(s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, errors.New("not a 6-byte MAC address like 02:00:00:00:00:11")
	}
	return m, nil
}

// parseDuration reads a Go duration ("900s", "5m"); "0" needs no unit.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration (write it with a unit, like 300s or 5m)")
	}
	return d, nil
}

// parseUint reads a decimal integer in 0..max.
func parseUint(s string, max uint64, what string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("%s must be an integer 0..%d", what, max)
	}
	return n, nil
}

// parseIPVSNetmask reads a persistence netmask as ipvsadm -M and
// keepalived's persistence_granularity take it: for IPv6 a prefix length
// (ipvsadm's atoi), for IPv4 a dotted mask (255.255.255.0) or /24. A bare
// number is refused for IPv4: both read it with inet_aton, so 24 is the
// mask 0.0.0.24 there, and taking it as /24 would group clients
// differently from the IPVS the file was written for.
func parseIPVSNetmask(s string, is6 bool) (int, error) {
	if !is6 {
		if n, err := strconv.Atoi(s); err == nil {
			if n >= 0 && n <= 32 {
				return 0, fmt.Errorf("a bare number is the mask 0.0.0.%d to ipvsadm and keepalived (inet_aton), not a prefix length: write the mask, %s", n, formatNetmask(n, false))
			}
			return 0, errors.New("a bare number is not an IPv4 netmask: write the mask, such as 255.255.255.0")
		}
	}
	return parseNetmask(s, is6)
}

// parseNetmask reads a persistence netmask as drlb's YAML takes it: a
// dotted IPv4 mask (255.255.255.0) or a prefix length (24, /24; the only
// form for IPv6). It returns the prefix length.
func parseNetmask(s string, is6 bool) (int, error) {
	max := 32
	if is6 {
		max = 128
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(s, "/")); err == nil {
		if n < 0 || n > max {
			return 0, fmt.Errorf("prefix length must be 0..%d", max)
		}
		return n, nil
	}
	if is6 {
		return 0, errors.New("an IPv6 netmask is a prefix length 0..128")
	}
	m, err := netip.ParseAddr(s)
	if err != nil || !m.Is4() {
		return 0, errors.New("not a netmask (255.255.255.0) or prefix length (24)")
	}
	b := m.As4()
	mask := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for ones < 32 && mask&(1<<(31-ones)) != 0 {
		ones++
	}
	if ones < 32 && mask<<ones != 0 {
		return 0, errors.New("netmask bits are not contiguous")
	}
	return ones, nil
}

// formatNetmask is parseNetmask's inverse in ipvsadm's style.
func formatNetmask(bits int, is6 bool) string {
	if is6 {
		return strconv.Itoa(bits)
	}
	if bits < 0 || bits > 32 {
		return strconv.Itoa(bits)
	}
	var mask [4]byte
	for i := range bits {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(mask).String()
}

// portNames are the service names ipvsadm -S (without -n) may print for
// common ports. Looking names up in /etc/services would make the result
// depend on the machine, so only these are known; others need ipvsadm -Sn.
var portNames = map[string]uint16{
	"ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
	"http": 80, "www": 80, "pop3": 110, "ntp": 123, "imap": 143, "imap2": 143,
	"snmp": 161, "ldap": 389, "https": 443, "submissions": 465, "smtps": 465,
	"submission": 587, "ldaps": 636, "imaps": 993, "pop3s": 995,
	"mysql": 3306, "postgresql": 5432, "sip": 5060, "http-alt": 8080,
}

// portNameOf is the name each port of portNames is printed with: the first
// name /etc/services gives it on Debian, as getservbyport returns it.
var portNameOf = map[uint16]string{
	21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "domain",
	80: "http", 110: "pop3", 123: "ntp", 143: "imap2",
	161: "snmp", 389: "ldap", 443: "https", 465: "submissions",
	587: "submission", 636: "ldaps", 993: "imaps", 995: "pop3s",
	3306: "mysql", 5432: "postgresql", 5060: "sip", 8080: "http-alt",
}

// parsePort reads a port number, or one of portNames when names is true.
func parsePort(s string, names bool) (uint16, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), nil
	}
	if names {
		if p, ok := portNames[s]; ok {
			return p, nil
		}
		if _, err := strconv.ParseUint(s, 10, 64); err != nil {
			return 0, errors.New("not a port number (use ipvsadm -Sn for numeric output)")
		}
	}
	return 0, errors.New("port must be an integer 0..65535")
}

// parseStatus reads accepted HTTP statuses as keepalived's status_code
// writes them: codes and low-high ranges separated by blanks
// ("200-299 404"). Whether they are valid HTTP statuses is validate's job.
func parseStatus(s string) ([]StatusRange, error) {
	var out []StatusRange
	for _, f := range strings.Fields(s) {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < 0 {
			return nil, fmt.Errorf("%q is not a status code or range (like 200, or 200-299)", f)
		}
		out = append(out, StatusRange{a, b})
	}
	if len(out) == 0 {
		return nil, errors.New("no status code (like 200, or 200-299 404)")
	}
	return out, nil
}

// FormatStatus is parseStatus's inverse: "200-299 404".
func FormatStatus(rs []StatusRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.Itoa(r.Min)
		if r.Max != r.Min {
			parts[i] += "-" + strconv.Itoa(r.Max)
		}
	}
	return strings.Join(parts, " ")
}

// parseHex reads bytes written as keepalived's UDP_CHECK hex strings:
// blank-separated groups of hex digits, read in pairs from the start of
// each group, a lone last digit making a byte of its own ("Ab12f 3" is
// AB 12 0F 03). With masks, an x digit matches anything: its bits are set
// in the mask (nil when no digit is x).
func parseHex(s string, masks bool) (data, mask []byte, err error) {
	nibble := func(c byte) (v, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0, true
		case masks && (c == 'x' || c == 'X'):
			return 0, 0xf, true
		}
		return 0, 0, false
	}
	anyMask := false
	for _, g := range strings.Fields(s) {
		for i := 0; i < len(g); i += 2 {
			hi, hm, ok := nibble(g[i])
			if !ok {
				return nil, nil, fmt.Errorf("%q is not a hex digit", g[i])
			}
			b, m := hi, hm
			if i+1 < len(g) {
				lo, lm, ok := nibble(g[i+1])
				if !ok {
					return nil, nil, fmt.Errorf("%q is not a hex digit", g[i+1])
				}
				b, m = hi<<4|lo, hm<<4|lm
			}
			data = append(data, b)
			mask = append(mask, m)
			anyMask = anyMask || m != 0
		}
	}
	if len(data) == 0 {
		return nil, nil, errors.New("no hex digits")
	}
	if !anyMask {
		mask = nil
	}
	return data, mask, nil
}

// hexText prints bytes for messages: "0a1b2c".
func hexText(b []byte) string { return hex.EncodeToString(b) }

// FormatHex prints data as parseHex reads it, with an x for each masked
// digit: "0a1bx2".
func FormatHex(data, mask []byte) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i, v := range data {
		var m byte
		if i < len(mask) {
			m = mask[i]
		}
		for _, sh := range []uint{4, 0} {
			if m>>sh&0xf != 0 {
				b.WriteByte('x')
			} else {
				b.WriteByte(digits[v>>sh&0xf])
			}
		}
	}
	return b.String()
}

// isMD5Hex reports whether s is 32 lower-case hex digits.
func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parseDigest reads an MD5 digest in hex, either case, as lower case.
func parseDigest(s string) (string, error) {
	d := strings.ToLower(s)
	if !isMD5Hex(d) {
		return "", errors.New("not an MD5 digest: 32 hex digits, as genhash prints")
	}
	return d, nil
}
