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
	st := f.cur.Load()
	f.table.Range(func(e *conntable.Entry) bool {
		if f.table.Expired(e, now) {
			return true
		}
		// A removed server's entries are listed too, until they end.
		_, r := st.owner(e.Service, e.Real)
		if r == nil {
			return true
		}
		c := ConnEntry{
			Protocol: config.Protocol(e.Key.Proto),
			Client:   netip.AddrPortFrom(netip.AddrFrom16(e.Key.CIP).Unmap(), e.Key.CPort),
			Virtual:  netip.AddrPortFrom(netip.AddrFrom16(e.Key.VIP).Unmap(), e.Key.VPort),
			Real:     r.addr,
			State:    StateName(e.State),
			Expires:  time.Duration(f.table.Expires(e) - now),
		}
		return fn(c)
	})
}
