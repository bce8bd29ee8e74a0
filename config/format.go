package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// FormatIPVSADM prints c's services as ipvsadm -Sn would: one -A rule per
// service followed by an -a rule per real server, in config order, so the
// text can be fed to ipvsadm-restore or back to Parse. What ipvsadm rules
// cannot say is left out: the interface, timeouts, connection limit, static
// MACs, health checks and mh_table_size.
func FormatIPVSADM(c *Config) string {
	var b strings.Builder
	for i := range c.Services {
		s := &c.Services[i]
		svc := "-t "
		if s.Protocol == UDP {
			svc = "-u "
		}
		svc += netip.AddrPortFrom(s.VIP, s.Port).String()
		b.WriteString("-A " + svc + " -s " + s.Scheduler)
		if f := formatFlags(s.Scheduler, s.SchedOptions); f != "" {
			b.WriteString(" -b " + f)
		}
		if s.Persistence > 0 {
			b.WriteString(" -p " + strconv.FormatInt(int64(s.Persistence/time.Second), 10))
			if s.PersistenceBits != fullBits(s.VIP.Is6()) {
				b.WriteString(" -M " + formatNetmask(s.PersistenceBits, s.VIP.Is6()))
			}
		}
		b.WriteByte('\n')
		for _, r := range s.RealServers {
			b.WriteString("-a " + svc + " -r " + netip.AddrPortFrom(r.Address, s.Port).String() +
				" -g -w " + strconv.Itoa(r.Weight) + "\n")
		}
	}
	return b.String()
}
