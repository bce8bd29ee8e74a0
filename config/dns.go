package config

import (
	"strings"
)

// DNSTypes are the record types a dns check may ask for, by name, with
// their numbers (RFC 1035, 2782, 3596, 4034): keepalived's DNS_CHECK
// types (A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY) and PTR and SRV.
var DNSTypes = []struct {
	Name string
	Code uint16
}{
	{"A", 1},
	{"AAAA", 28},
	{"CNAME", 5},
	{"DNSKEY", 48},
	{"MX", 15},
	{"NS", 2},
	{"PTR", 12},
	{"RRSIG", 46},
	{"SOA", 6},
	{"SRV", 33},
	{"TXT", 16},
}

// DNSTypeCode returns the number of the record type named (upper case, as
// in DNSTypes) and whether it is one a dns check may ask for.
func DNSTypeCode(name string) (uint16, bool) {
	for _, t := range DNSTypes {
		if t.Name == name {
			return t.Code, true
		}
	}
	return 0, false
}

func dnsTypeNames() string {
	names := make([]string, len(DNSTypes))
	for i, t := range DNSTypes {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

// maxDNSName is the longest name in text, without its trailing dot: 253
// characters make the 255 bytes a name may take in a message.
const maxDNSName = 253

// dnsNameProblem says why a dns check cannot ask for name, or "". A name
// is "." (the root) or labels of 1 to 63 printable ASCII characters
// (no spaces or backslashes: drlb reads no escapes) joined by dots, with
// an optional trailing dot.
func dnsNameProblem(name string) string {
	if name == "." {
		return ""
	}
	if name == "" {
		return "a domain name is required (. asks about the root)"
	}
	s := strings.TrimSuffix(name, ".")
	if len(s) > maxDNSName {
		return "longer than 253 characters"
	}
	for _, label := range strings.Split(s, ".") {
		switch {
		case label == "":
			return "an empty label (two dots, or a leading dot)"
		case len(label) > 63:
			return "a label is longer than 63 characters"
		}
		for i := 0; i < len(label); i++ {
			switch c := label[i]; {
			case c >= 0x80:
				return "not ASCII: write an internationalized name in its xn-- form"
			case c <= ' ' || c == 0x7f || c == '\\':
				return "spaces, control characters and backslashes are not allowed"
			}
		}
	}
	return ""
}

func knownDNSType(name string) bool {
	_, ok := DNSTypeCode(name)
	return ok
}
