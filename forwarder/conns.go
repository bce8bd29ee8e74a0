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
		c, ok := f.connEntry(st, e, now)
		return !ok || fn(c)
	})
}

// RangeConnEntriesFrom is RangeConnEntries over the n table slots from
// slot from, for a caller that walks a large table in bounded chunks and
// releases the worker's lock between them (a listing must not hold the
// worker for a whole table). It returns the slot to go on from, -1 at the
// end. A chunk ends after an empty slot (it may run past n to the end
// of a probe run), so an entry live throughout the listing is listed
// even if a deletion between chunks shifts it; one may be listed twice
// (conntable.Table.RangeSlots).
func (f *Forwarder) RangeConnEntriesFrom(from, n int, now int64, fn func(ConnEntry)) int {
	st := f.cur.Load()
	return f.table.RangeSlots(from, n, func(e *conntable.Entry) {
		if c, ok := f.connEntry(st, e, now); ok {
			fn(c)
		}
	})
}

// connEntry is e as listed, or false for an expired entry or one whose
// server is gone.
func (f *Forwarder) connEntry(st *state, e *conntable.Entry, now int64) (ConnEntry, bool) {
	if f.table.Expired(e, now) {
		return ConnEntry{}, false
	}
	// A removed server's entries are listed too, until they end.
	_, r := st.owner(e.Service, e.Real)
	if r == nil {
		return ConnEntry{}, false
	}
	return ConnEntry{
		Protocol: config.Protocol(e.Key.Proto),
		Client:   netip.AddrPortFrom(netip.AddrFrom16(e.Key.CIP).Unmap(), e.Key.CPort),
		Virtual:  netip.AddrPortFrom(netip.AddrFrom16(e.Key.VIP).Unmap(), e.Key.VPort),
		Real:     r.addr,
		State:    StateName(e.State),
		Expires:  time.Duration(f.table.Expires(e) - now),
	}, true
}
