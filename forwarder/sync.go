package forwarder

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/conntable"
)

// SyncEvent is one change of the connection table for the peers
// (connection sync, issue 12): a new connection or template, a state
// change, a refresh, or an end. It names the service by its port (with
// the key's protocol and VIP) and the real server by address, as
// connsync.Entry carries them.
type SyncEvent struct {
	Key     conntable.Key
	Op      uint8 // connsync.OpUpsert or OpEnd
	State   uint8
	SvcPort uint16
	Real    netip.Addr
	Timeout time.Duration
}

// syncLog is the data path's record of sync events: a buffer of fixed
// capacity owned by whoever runs Process (the director's loop, under its
// lock), emptied after each batch. When it is full, events are dropped
// and counted: the data path never waits for the network.
type syncLog struct {
	events  []SyncEvent // nil: sync off
	dropped atomic.Uint64
}

// EnableSync makes Process record sync events, at most capacity between
// two TakeSyncEvents. Call it before the forwarder runs.
func (f *Forwarder) EnableSync(capacity int) {
	f.sync.events = make([]SyncEvent, 0, max(capacity, 1))
}

// SyncEvents returns the events recorded since the last ResetSyncEvents;
// the slice is reused, so copy it before the next Process.
func (f *Forwarder) SyncEvents() []SyncEvent { return f.sync.events }

// ResetSyncEvents empties the event buffer.
func (f *Forwarder) ResetSyncEvents() { f.sync.events = f.sync.events[:0] }

// SyncDropped is how many events did not fit in this worker's buffer.
func (f *Forwarder) SyncDropped() uint64 { return f.sync.dropped.Load() }

// syncUnit is the grain of Entry.Flags' sync stamp: when the entry was
// last sent to (or received from) the peers, in 16-second units modulo
// 128, in the low 7 bits (stampBits); the high bit says the entry's flow
// was handed to the kernel (flagKernel, kernelflows.go).
const syncUnit = 16 * time.Second

// stampBits are the bits of Entry.Flags that hold the sync stamp.
const stampBits = 0x7f

func syncStamp(now int64) uint8 { return uint8(now/int64(syncUnit)) & stampBits }

// stampSync records in e's flags that it was sent or received at now.
func stampSync(e *conntable.Entry, now int64) { e.Flags = e.Flags&^stampBits | syncStamp(now) }

// stampUnsent stamps e as sent syncDueMax units before now: due (syncDue,
// whatever its timeout) with the first frame that may send it, for the
// next syncDueMax units, as an entry never sent should be.
func stampUnsent(e *conntable.Entry, now int64) {
	e.Flags = e.Flags&^stampBits | (syncStamp(now)-syncDueMax)&stampBits
}

// syncWithheld reports whether a new or refreshed entry in state is kept
// from the peers: a SYN_RECV connection under table pressure. Most of them
// are a SYN flood's, and sending each to every peer added as many
// datagrams again as the flood (IPVS, in its default sync mode, never
// syncs a connection that has not left SYN_RECV either). One whose
// handshake completes is sent then: its state changes, and a state change
// is always sent (Process), with its template (holdTemplate).
func (f *Forwarder) syncWithheld(state uint8) bool {
	return state == stateSynRecv && f.pressure.Load()
}

// syncDue reports, from the stamp alone, whether an entry whose state did
// not change should be sent again: once half its timeout passed since it
// was last sent (syncWait), and at most syncDueMax units: the stamp wraps
// every 128 units, so a wait of 127 would be due only in the one unit
// where the difference is exactly 127 (a long timeout's entry whose
// frames came once a minute missed it most of the time); capped at 64,
// an entry with a frame at least every 1024 s is sent again every
// 1024-2048 s. The stamp cannot tell a wait of d units from one of
// d+128: resendDue adds what the entry's expiry says.
func syncDue(flags uint8, now int64, timeout time.Duration) bool {
	return int64((syncStamp(now)-flags)&stampBits) >= syncHalf(timeout)
}

// syncHalf is the wait syncDue asks for, in syncUnits.
func syncHalf(timeout time.Duration) int64 {
	return min(max(int64(timeout/2/syncUnit), 1), syncDueMax)
}

// syncDueMax is the longest wait syncDue asks for, in syncUnits: half the
// stamp's range.
const syncDueMax = (stampBits + 1) / 2

// syncIdleDue: an entry whose last frame (the last time its timeout was
// set, expiry - timeout) is at least this long ago is due whatever its
// stamp says. The stamp alone wraps: with tcp 7200 s and a frame every
// 2200 s, the difference was 9 units at every frame and the entry was
// never sent again (the peer's copy expired after 7200 s). A frame not
// due was less than syncDueMax units after the last send (the stamp is
// right until then), and the next one, if less than this after it (plus
// the up to 5 s a kernel flow's expiry adds and a second's rounding),
// is at most 125 units after the send: the stamp has not wrapped. A
// longer gap means at least this long since the send too (a send sets
// the timeout), which is at least the wait syncDue asks of any timeout
// under 1952 s and within 48 s of it above: due. No bit of the entry is
// needed for it (Flags holds the stamp and the kernel bit, and the entry
// stays 48 bytes).
const syncIdleDue = (syncDueMax - 3) * syncUnit

// resendDue reports whether e (whose state did not change, its timeout
// timeout) should be sent to the peers again at now: syncDue, or its last
// frame syncIdleDue ago. Call it before the frame sets e's timeout.
func (f *Forwarder) resendDue(e *conntable.Entry, now int64, timeout time.Duration) bool {
	return syncDue(e.Flags, now, timeout) || now-(f.table.Expires(e)-int64(timeout)) >= int64(syncIdleDue)
}

// syncHold is how long a peer keeps an entry sent with timeout: the
// timeout plus the longest the sender may wait before sending it again.
// The sender sends an unchanged entry only with a frame, once syncDue; a
// frame just before that (syncHalf units, less a unit's rounding after
// the send) renews its own copy for the timeout, and the next one may
// come just before that runs out. Kept for the timeout alone, the peer's
// copy ran out in between: frames at 0, 430 s and 1320 s (timeout 900
// s) left the backup without the flow from 900 s to 1320 s, and a
// failover then dropped it (no-conn). Holding the copy longer costs
// nothing on the wire, where sending earlier (every frame after a
// quarter of the timeout, say) would still need some slack and sends
// more: the peer's copy outlives the flow's end by at most this slack,
// as a handed-out kernel flow's entry does by a refresh.
func syncHold(timeout time.Duration) time.Duration {
	return timeout + time.Duration(syncHalf(timeout)+1)*syncUnit
}

// record adds an event for e (owned by r of s) with timeout from now.
func (f *Forwarder) record(op uint8, e *conntable.Entry, s *service, r *realServer, timeout time.Duration, now int64) {
	if f.sync.events == nil {
		return
	}
	if len(f.sync.events) == cap(f.sync.events) {
		f.sync.dropped.Add(1)
		return
	}
	stampSync(e, now)
	f.sync.events = append(f.sync.events, SyncEvent{Key: e.Key, Op: op, State: e.State, SvcPort: s.key.port, Real: r.addr, Timeout: timeout})
}

// SyncResult is what ApplySync did with an entry.
type SyncResult uint8

const (
	SyncApplied        SyncResult = iota // inserted or updated
	SyncEnded                            // deleted (or already gone, or another connection's here)
	SyncUnknownService                   // no such service here
	SyncUnknownServer                    // the service has no such real server here
	SyncInvalid                          // a state that makes no sense for the kind
	SyncTableFull                        // no room
)

// SyncResultNames name the results for counters.
var SyncResultNames = [...]string{"applied", "ended", "unknown_service", "unknown_server", "invalid", "table_full"}

// ApplySync makes a peer's entry count here: inserted or updated (same
// key: the peer's real server, found by address in the service of the
// same protocol, VIP and port; the peer's state and time left), or, for
// an end, deleted if it is the connection the end names (applyEnd). It
// counts in the real server's active/inactive counters like a local
// entry, and is not recorded as a sync event (no echo). Like Process it
// changes the table: call it where Process cannot run at the same time.
func (f *Forwarder) ApplySync(e *connsync.Entry, now int64) SyncResult {
	st := f.cur.Load()
	if e.Op == connsync.OpEnd {
		return f.applyEnd(st, e, now)
	}
	s := st.byKey[syncSvcKey(e)]
	if s == nil || s.idx < 0 {
		return SyncUnknownService
	}
	var r *realServer
	for _, x := range s.reals {
		if x.addr == e.Real {
			r = x
			break
		}
	}
	if r == nil && s.sorry != nil && s.sorry.addr == e.Real {
		r = s.sorry
	}
	if r == nil {
		return SyncUnknownServer
	}
	template := e.Kind == conntable.KindTemplate
	if e.State == stateNone || e.State > stateTemplate || template != (e.State == stateTemplate) || e.Kind > conntable.KindTemplate {
		return SyncInvalid
	}
	f.key = syncKey(e)
	ex := f.table.Lookup(&f.key, now)
	if ex != nil {
		// A peer's record moves the entry on (its state, its timeout):
		// the kernel gives the flow back, as for a frame the full path
		// handles, and gets it again with the next frame drlb forwards.
		f.takeBack(ex)
	}
	if ex != nil && (ex.Service != s.slot || ex.Real != r.slot) {
		f.table.Delete(ex) // the peer scheduled it elsewhere: the peer's is the flow's
		ex = nil
	}
	// A connection the peer saw established: its client is trusted here
	// too (handshakes.go), so that after a failover during a SYN flood
	// the clients the old master knew keep their own SYN queue.
	if e.Proto == protoTCP && e.State == stateEstablished && (ex == nil || ex.State != stateEstablished) {
		f.hs.note(e.CIP)
	}
	if ex == nil {
		var err error
		if ex, err = f.insert(&f.key, now); err != nil {
			return SyncTableFull
		}
		ex.Service, ex.Real, ex.State = s.slot, r.slot, e.State
		r.count(e.State, +1)
	} else if ex.State != e.State {
		r.count(ex.State, -1)
		r.count(e.State, +1)
		ex.State = e.State
	}
	hold := syncHold(e.Timeout)
	if !template || f.table.Expires(ex) < now+int64(hold) {
		// A template is not shortened: it may be held here by a
		// connection (below) longer than the peer's record says.
		f.table.SetTimeout(ex, now, hold)
	}
	stampSync(ex, now)
	if !template && s.cfg.Persistence > 0 {
		// As the peer's connection holds its template (holdTemplate),
		// this copy holds the copy of it: the peer sends the template
		// only when picked or due, and the connection keeps it alive
		// there longer than the record of it says.
		fl := flow{proto: e.Proto, src: e.CIP, dst: e.VIP, srcPort: e.CPort, dstPort: e.VPort}
		f.holdTemplate(s, &fl, s.slot, r.slot, f.table.Expires(ex), nil, false, now)
	}
	return SyncApplied
}

// syncKey is the table key of a peer's entry e.
func syncKey(e *connsync.Entry) conntable.Key {
	return conntable.Key{CIP: e.CIP.As16(), VIP: e.VIP.As16(), CPort: e.CPort, VPort: e.VPort, Proto: e.Proto, Kind: e.Kind}
}

// syncSvcKey is the service a peer's entry e names: its protocol, VIP
// and service port as configured (0 for a service of every port).
func syncSvcKey(e *connsync.Entry) svcKey {
	return svcKey{proto: e.Proto, vip: e.VIP, port: e.SvcPort}
}

// applyEnd deletes the entry a peer's end names, if this table's entry of
// that key is the same connection: of the same service (protocol, VIP,
// port) and real server. The end is not checked against the
// configuration: a reload that removed the server (or the service) on
// both directors keeps the entries that name it until they end, and
// their ends are no mismatch. An entry of another server is a newer
// connection on the same ports, scheduled here or by another peer, which
// the end of the old one must not take away; no entry, or another one,
// leaves nothing to do (SyncEnded: gone here too).
func (f *Forwarder) applyEnd(st *state, e *connsync.Entry, now int64) SyncResult {
	if e.Kind > conntable.KindTemplate {
		return SyncInvalid
	}
	f.key = syncKey(e)
	ex := f.table.Lookup(&f.key, now)
	if ex == nil {
		return SyncEnded
	}
	if s, r := st.owner(ex.Service, ex.Real); s != nil && r != nil &&
		s.key == syncSvcKey(e) && r.addr == e.Real {
		f.table.Delete(ex)
	}
	return SyncEnded
}

// RangeSync walks n slots of the table from slot from, calling fn with
// an event for each live entry (a bulk copy for a peer that starts), and
// returns the slot to continue from, -1 at the end. Like Process, call it
// where Process cannot run at the same time.
func (f *Forwarder) RangeSync(from, n int, now int64, fn func(*SyncEvent)) int {
	st := f.cur.Load()
	var ev SyncEvent
	return f.table.RangeSlots(from, n, func(e *conntable.Entry) {
		if f.table.Expired(e, now) {
			return
		}
		// An entry of a removed service or server is left out: its
		// connection ends at its next frame (server-gone), and a peer
		// without that server would count and log it as a mismatch.
		s, r := st.owner(e.Service, e.Real)
		if s == nil || r == nil || s.idx < 0 || s.ref(e.Real).idx < 0 {
			return
		}
		// Under pressure, as for the events: most SYN_RECV entries are
		// a flood's, up to half the table, and one that completes its
		// handshake is sent then.
		if f.syncWithheld(e.State) {
			return
		}
		ev = SyncEvent{Key: e.Key, Op: connsync.OpUpsert, State: e.State, SvcPort: s.key.port, Real: r.addr,
			Timeout: time.Duration(f.table.Expires(e) - now)}
		fn(&ev)
	})
}
