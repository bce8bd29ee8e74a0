package forwarder

import (
	"time"

	"github.com/drlb/drlb/conntable"
)

// Table pressure (IPVS's secure_tcp and drop_entry, tied to the connection
// table's fill instead of the host's memory). Under a SYN flood from
// spoofed sources the table fills with entries that never leave SYN_RECV.
// Once the table holds PressureOnPercent of max_conns, new and refreshed
// SYN_RECV entries get SynRecvPressureTimeout instead of the configured
// SYN_RECV timeout (if that is shorter it stays); below PressureOffPercent
// the configured one applies again. A full table makes room by evicting a
// SYN_RECV connection (roughly the oldest of those near a rotating hand,
// see conntable.Options.Evictable); ESTABLISHED, FIN_WAIT, CLOSE and UDP
// entries and persistence templates are never evicted, so a table full of
// them still refuses new connections (ReasonTableFull).
const (
	PressureOnPercent      = 50
	PressureOffPercent     = 40
	SynRecvPressureTimeout = 3 * time.Second
)

// Overload is the state of the table pressure defence.
type Overload struct {
	// Pressure is whether SYN_RECV entries get the short timeout now.
	Pressure bool
	// PressureEpisodes counts how often pressure began.
	PressureEpisodes uint64
	// SynEvicted counts SYN_RECV connections evicted from a full table to
	// make room for a new connection.
	SynEvicted uint64
	// SynStateless counts SYNs forwarded without entry under pressure
	// (ReasonSynStateless, stateless.go).
	SynStateless uint64
	// Handshakes counts the clients TakeHandshakes reported (each once
	// while it stays among a worker's last few thousand) that the caller
	// put in its trusted lane (HandshakesTrusted). It never goes down.
	Handshakes uint64
}

// Overload returns the table pressure state and its counters, of all the
// workers (pressure: any of them). It may be called from any goroutine.
func (f *Forwarder) Overload() Overload {
	o := Overload{PressureEpisodes: f.pressureEpisodes.Load(), SynStateless: f.Count(ReasonSynStateless)}
	for _, w := range f.workers {
		o.Pressure = o.Pressure || w.pressure.Load()
		o.SynEvicted += w.synEvicted.Load()
		o.Handshakes += w.hs.total.Load()
	}
	return o
}

// evictable is the connection table's Options.Evictable: connections that
// never left SYN_RECV.
func evictable(e *conntable.Entry) bool {
	return e.Key.Kind == conntable.KindConn && e.State == stateSynRecv
}

// updatePressure turns pressure on or off from the table's fill, with
// hysteresis. The fill counts the SYN_RECV entries that recent stateless
// SYNs would have made (stateless.go).
func (f *Forwarder) updatePressure(now int64) {
	n, c := f.table.Len()+f.stateless.shadow(now), f.table.Cap()
	on := f.pressure.Load()
	switch {
	case !on && n*100 >= c*PressureOnPercent:
		f.pressure.Store(true)
		f.pressureEpisodes.Add(1)
	case on && n*100 < c*PressureOffPercent:
		f.pressure.Store(false)
	}
}

// timeout is the timeout of an entry in state: the configured one, or the
// short SYN_RECV timeout under pressure.
func (f *Forwarder) timeout(st *state, state uint8) time.Duration {
	d := st.timeouts[state]
	if state == stateSynRecv && f.pressure.Load() {
		d = min(d, SynRecvPressureTimeout)
	}
	return d
}

// insert inserts k into the table and publishes the table's eviction
// count, for Overload's readers on other goroutines. Every insert of the
// forwarder goes through it (Process's and ApplySync's alike), since any
// of them may evict a SYN_RECV entry: a backup fed by connection sync
// evicts as a master does and must count it too.
func (f *Forwarder) insert(k *conntable.Key, now int64) (*conntable.Entry, error) {
	e, err := f.table.Insert(k, now)
	if n := f.table.Evicted(); n != f.synEvicted.Load() {
		f.synEvicted.Store(n)
	}
	return e, err
}
