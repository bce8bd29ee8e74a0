package config

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FormatIPVSADM prints c's services as ipvsadm -Sn would: one -A rule per
// service followed by an -a rule per real server, in config order, so the
// text can be fed to ipvsadm-restore or back to Parse. What ipvsadm rules
// cannot say is left out: the interface, timeouts, connection limit, static
// MACs, health checks, sorry servers and mh_table_size.
func FormatIPVSADM(c *Config) string { return formatRules(c.Services, true) }

// SaveIpvsadm prints c as `ipvsadm -S` (ipvsadm-save) prints the kernel's
// table, byte for byte: services in ipvsadm's order (IPv4 before IPv6, TCP
// before UDP, then by address and port), each one's real servers by
// address, and what FormatIPVSADM leaves out left out too:
//
//	-A -t 198.18.0.100:80 -s wrr
//	-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3
//
// numeric is -n: ports as numbers. Without it ports are named as ipvsadm
// names them (http, https, domain), from a fixed table of well-known
// services so the text is the same on every machine, and addresses stay
// numeric (drlb asks no DNS server). Parse reads either back.
func SaveIpvsadm(c *Config, numeric bool) string {
	return formatRules(sortedServices(c.Services), numeric)
}

// sortedServices returns copies of services, and of their real servers,
// in the order ipvsadm lists them (see SaveIpvsadm).
func sortedServices(services []Service) []Service {
	out := slices.Clone(services)
	slices.SortStableFunc(out, func(a, b Service) int {
		return cmp.Or(
			cmp.Compare(boolInt(a.VIP.Is6()), boolInt(b.VIP.Is6())),
			cmp.Compare(a.Protocol, b.Protocol),
			IpvsadmCompare(a.VIP, b.VIP),
			cmp.Compare(a.Port, b.Port))
	})
	for i := range out {
		out[i].RealServers = slices.Clone(out[i].RealServers)
		slices.SortStableFunc(out[i].RealServers, func(a, b RealServer) int { return IpvsadmCompare(a.Address, b.Address) })
	}
	return out
}

// IpvsadmCompare orders two addresses of one family as ipvsadm lists
// them. libipvs compares each 32-bit word as int(ntohl(a) - ntohl(b)),
// an unsigned difference read as signed, so words 2^31 or more apart sort
// the other way round: 192.168.0.1 before 10.0.0.1, 198.18.0.1 before
// 10.0.0.1. Kept so that `drlb ctl -L` and `-S` print ipvsadm's order
// byte for byte.
func IpvsadmCompare(a, b netip.Addr) int {
	if a.Is4() != b.Is4() {
		return cmp.Compare(boolInt(a.Is6()), boolInt(b.Is6()))
	}
	x, y := a.As16(), b.As16()
	start := 0
	if a.Is4() {
		start = 12
	}
	for i := start; i < 16; i += 4 {
		if d := int32(binary.BigEndian.Uint32(x[i:]) - binary.BigEndian.Uint32(y[i:])); d != 0 {
			return cmp.Compare(d, 0)
		}
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// formatRules prints services as -A and -a rules; numeric is ipvsadm's -n.
func formatRules(services []Service, numeric bool) string {
	var b strings.Builder
	for i := range services {
		s := &services[i]
		svc := "-t "
		if s.Protocol == UDP {
			svc = "-u "
		}
		svc += FormatAddrPort(s.VIP, s.Port, numeric)
		// ipvsadm's order (print_service_entry): -s, -p and -M, then -b.
		b.WriteString("-A " + svc + " -s " + s.Scheduler)
		if s.Persistence > 0 {
			b.WriteString(" -p " + strconv.FormatInt(int64(s.Persistence/time.Second), 10))
			if s.PersistenceBits != fullBits(s.VIP.Is6()) {
				b.WriteString(" -M " + formatNetmask(s.PersistenceBits, s.VIP.Is6()))
			}
		}
		if f := formatFlags(s.Scheduler, s.SchedOptions); f != "" {
			b.WriteString(" -b " + f)
		}
		b.WriteByte('\n')
		for _, r := range s.RealServers {
			b.WriteString("-a " + svc + " -r " + FormatAddrPort(r.Address, s.Port, numeric) +
				" -g -w " + strconv.Itoa(r.Weight) + "\n")
		}
	}
	return b.String()
}

// FormatAddrPort prints an address and port as ipvsadm does: 198.18.0.100:80,
// [2001:2::100]:80; without numeric a well-known port by its name
// (198.18.0.100:http), as ipvsadm without -n (addresses stay numeric).
func FormatAddrPort(a netip.Addr, port uint16, numeric bool) string {
	if numeric {
		return netip.AddrPortFrom(a, port).String()
	}
	host := a.String()
	if a.Is6() {
		host = "[" + host + "]"
	}
	return host + ":" + PortName(port)
}

// PortName is the name ipvsadm prints for a port without -n: the service
// name of a well-known port (80 is http), the number otherwise. The table
// is fixed (not /etc/services), and Parse reads every name in it.
func PortName(port uint16) string {
	if n, ok := portNameOf[port]; ok {
		return n
	}
	return strconv.Itoa(int(port))
}
