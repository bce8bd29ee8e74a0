package forwarder

import (
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/scheduler"
)

// Stateless SYNs under table pressure: SYN cookies' idea for a DR director.
//
// A director in DR mode never sees the real server's SYN-ACK, so it cannot
// check a cookie in the client's ACK; but it does not need to: what the
// entry of a half-open connection holds is only the real server it went
// to, and a hash of the flow gives that again. So while the table is under
// pressure (pressure.go) a TCP SYN that has no entry is placed by a
// weighted hash of its flow over the usable servers (the service's own
// scheduler when it is consistent, sh or mh; otherwise a source-hash
// table with the ports and fallback built beside it from the same
// snapshot) and forwarded with nothing inserted (ReasonSynStateless). A
// spoofed SYN then costs no table space and no eviction. Within
// StatelessWindow of the last such SYN, a non-SYN packet without entry is
// placed by the same hash, which gives the server its SYN went to, and
// inserted (as SYN_RECV, ESTABLISHED with the client's next ACK, so
// spoofed ACKs only make evictable, short-lived entries; a FIN or a reset
// is forwarded without entry; ReasonPressureAdopted),
// recorded for connection sync like any new entry; if the table is full
// of entries that may not be evicted it is forwarded all the same,
// without entry (ReasonStatelessFull), so new connections go on while
// pressure lasts.
//
// The price: while under pressure, new connections of a service with a
// load-based or round-robin scheduler (rr, wlc, ...) are spread by the
// hash, in proportion to weight, not by the configured scheduler. Services
// with persistence keep the stateful path (short SYN_RECV timeout,
// SYN_RECV eviction): a connection must find or make its client's
// template, which a hash of the flow does not give. UDP is unchanged.
//
// Pressure is the table's fill plus the SYN_RECV entries the stateless
// SYNs of the last SynRecvPressureTimeout would have made (each would have
// had that short timeout), so that it does not turn off merely because
// the stateless SYNs stopped filling the table.

// StatelessWindow is how long after the last stateless SYN a non-SYN
// packet without entry is still placed by the hash: the short SYN_RECV
// timeout, which a stateful half-open connection would have had.
const StatelessWindow = SynRecvPressureTimeout

// shadowSeconds is how many one-second buckets count recent stateless
// SYNs: the current second and the whole seconds of the pressure timeout
// before it, so shadow counts 3 to 4 s of them.
const shadowSeconds = int64(SynRecvPressureTimeout/time.Second) + 1

// statelessState is the Forwarder's record of stateless SYNs. Atomics:
// written by Process, read by anyone (Overload).
type statelessState struct {
	// until is the end of the adoption window, unix nanoseconds.
	until atomic.Int64
	// sec and n count stateless SYNs per second (sec: unix second the
	// bucket holds, n: how many).
	sec [shadowSeconds]atomic.Int64
	n   [shadowSeconds]atomic.Int64
}

// note counts a stateless SYN at now and opens the adoption window.
func (s *statelessState) note(now int64) { s.noteN(now, 1) }

// noteN counts n stateless SYNs at now and opens the adoption window: as
// n calls of note(now) for n > 0 (callers skip n == 0, which opens
// nothing).
func (s *statelessState) noteN(now int64, n uint64) {
	sec := now / int64(time.Second)
	i := uint64(sec) % uint64(shadowSeconds)
	if s.sec[i].Load() != sec {
		s.sec[i].Store(sec)
		s.n[i].Store(0)
	}
	s.n[i].Add(int64(n))
	s.until.Store(now + int64(StatelessWindow))
}

// shadow is how many SYN_RECV entries the stateless SYNs of the last
// SynRecvPressureTimeout would hold.
func (s *statelessState) shadow(now int64) int {
	if now >= s.until.Load() {
		return 0 // none within the window: skip the buckets
	}
	sec := now / int64(time.Second)
	n := int64(0)
	for i := range s.sec {
		if d := sec - s.sec[i].Load(); d >= 0 && d < shadowSeconds {
			n += s.n[i].Load()
		}
	}
	return int(n)
}

// open reports whether now is within the adoption window.
func (s *statelessState) open(now int64) bool { return now < s.until.Load() }

// buildStateless builds the hash that places SYNs under pressure for a
// service whose scheduler is not consistent (and has no persistence) from
// the snapshot its scheduler is built from.
func (s *service) buildStateless(snap []scheduler.Server) {
	if s.consistent || s.cfg.Persistence > 0 {
		return
	}
	sc, err := scheduler.New("sh", snap, scheduler.Options{HashPort: true, Fallback: true})
	if err != nil {
		return // sh builds from any snapshot; without it SYNs stay stateful
	}
	s.stateless.Store(sc)
}

// hashSchedule places a flow by the service's stateless hash; like
// schedule it never returns a server that is not usable.
func (f *Forwarder) hashSchedule(s *service, fl *flow) (int, bool) {
	return f.pickWith(s.statelessScheduler(), s, fl)
}

// statelessScheduler is the scheduler that places s's connections
// without entry: its own when consistent, else the hash built beside it
// (nil for none).
func (s *service) statelessScheduler() scheduler.Scheduler {
	if s.consistent {
		return s.sched.Load()
	}
	return s.stateless.Load()
}

// synStateless forwards a TCP SYN without entry by the hash while the table
// is under pressure; ok is false when it does not apply (no pressure, a
// persistent service, no usable server by the hash: the stateful path
// decides then, sorry server included).
func (f *Forwarder) synStateless(s *service, p *packet, now int64) (Result, bool) {
	if !f.pressure.Load() || s.cfg.Persistence > 0 || f.statefulSYN {
		return Result{}, false
	}
	ri, ok := f.hashSchedule(s, &p.flow)
	if !ok {
		return Result{}, false
	}
	f.stateless.note(now)
	return f.result(Forward, ReasonSynStateless, s.idx, ri), true
}

// adoptable reports whether a non-SYN TCP packet without entry is placed
// by the stateless hash: within the window after stateless SYNs, for a
// service without persistence.
func (f *Forwarder) adoptable(s *service, now int64) bool {
	return s.cfg.Persistence == 0 && f.stateless.open(now)
}

// adoptStateless places a non-SYN TCP packet without entry by the hash
// that placed its SYN and inserts its entry (key in f.key), in SYN_RECV
// until the client's next packet; a full table still forwards it. A FIN
// or a reset is forwarded without entry: as FIN_WAIT or CLOSE, entries
// eviction refuses, spoofed ones would fill a full table; as SYN_RECV,
// the closing client's last ACK would make a FIN's entry ESTABLISHED, for
// the full tcp timeout, and count its client as one that completed a
// handshake (the trusted lane). That last ACK makes a SYN_RECV entry of
// its own, which the short pressure timeout soon ends.
func (f *Forwarder) adoptStateless(st *state, s *service, p *packet, now int64) Result {
	if p.tcpFlags&(tcpRST|tcpFIN) != 0 {
		return f.resetWithoutEntry(s, p, now, ReasonPressureAdopted)
	}
	ri, ok := f.hashSchedule(s, &p.flow)
	if !ok {
		return f.result(Drop, ReasonNoServer, s.idx, -1)
	}
	// The packet (the handshake's ACK, data) makes a SYN_RECV entry,
	// which the client's next packet moves on (tcpNext: ESTABLISHED for
	// an ACK). ESTABLISHED at once would let spoofed packets sent within
	// the window fill the table with entries that are never evicted and
	// live the full tcp timeout, and a full table of those leaves a real
	// client's ACK stateless-full, then no-conn once the window closes.
	// As SYN_RECV they get the short pressure timeout and are evicted
	// first, until the client proves itself with a second packet.
	e, err := f.insert(&f.key, now)
	if err != nil {
		return f.result(Forward, ReasonStatelessFull, s.idx, ri)
	}
	f.openEntry(st, s, s.reals[ri], e, stateSynRecv, now)
	return f.result(Forward, ReasonPressureAdopted, s.idx, ri)
}

// resetWithoutEntry forwards a TCP reset that has no entry where the
// packets of its connection would be adopted, inserting nothing (and so a
// FIN in the stateless window: adoptStateless): to the
// server of its client's live persistence template if any (as pick
// does, but without making one), else by the hash that places the
// service's connections without entry (its consistent scheduler, or the
// stateless hash in the adoption window). It counts as reason, the
// adoption it stands in for.
//
// What an IPVS operator expects: IPVS never makes a connection of a
// reset (tcp_conn_schedule skips th->rst, even with sloppy_tcp), so
// `ipvsadm -Lnc` never shows one and a reset flood neither fills the
// table (CLOSE entries, which eviction refuses) nor adds to the servers'
// InActConn. Unlike IPVS, which leaves such a packet to the director's
// own stack, drlb forwards it: by the hash it reaches the server holding
// the connection, if any (one that survived a director restart or
// failover, one whose SYN went statelessly), which can then drop it
// instead of retransmitting to a client that resets each try. A spoofed
// reset costs the server what it costs with an entry: nothing drlb can
// check, the server's TCP does.
func (f *Forwarder) resetWithoutEntry(s *service, p *packet, now int64, reason Reason) Result {
	if s.cfg.Persistence > 0 {
		f.templateKey(s, &p.flow)
		if t := f.table.Lookup(&f.tkey, now); t != nil && t.Service == s.slot {
			if ref := s.ref(t.Real); ref.r != nil && ref.idx >= 0 && ref.r.usable() {
				return f.result(Forward, reason, s.idx, int(ref.idx))
			}
		}
	}
	ri, ok := f.hashSchedule(s, &p.flow)
	if !ok {
		return f.result(Drop, ReasonNoServer, s.idx, -1)
	}
	return f.result(Forward, reason, s.idx, ri)
}
