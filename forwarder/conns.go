package forwarder

import (
	"net/netip"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/conntable"
)

// ConnEntry is one entry of the connection table, as `ipvsadm -Lnc` lists
// it: a connection or a persistence template.
type ConnEntry struct {
	Protocol config.Protocol
	Client   netip.AddrPort // for a persistence template, the masked client and port 0
	Virtual  netip.AddrPort
	Real     netip.Addr
	State    string        // SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE, UDP, TEMPLATE
	Expires  time.Duration // from now
}

// RangeConnEntries calls fn for each live entry of the connection table
// (connections and persistence templates) until fn returns false. Like
// Process it reads the table, so call it only where Process cannot run at
// the same time.
func (f *Forwarder) RangeConnEntries(now int64, fn func(ConnEntry) bool) {
	f.table.Range(func(e *conntable.Entry) bool {
		if f.table.Expired(e, now) || int(e.Service) >= len(f.services) {
			return true
		}
		s := f.services[e.Service]
		if int(e.Real) >= len(s.reals) {
			return true
		}
		c := ConnEntry{
			Protocol: config.Protocol(e.Key.Proto),
			Client:   netip.AddrPortFrom(netip.AddrFrom16(e.Key.CIP).Unmap(), e.Key.CPort),
			Virtual:  netip.AddrPortFrom(netip.AddrFrom16(e.Key.VIP).Unmap(), e.Key.VPort),
			Real:     s.reals[e.Real].addr,
			State:    StateName(e.State),
			Expires:  time.Duration(f.table.Expires(e) - now),
		}
		return fn(c)
	})
}
