package forwarder

import (
	"net/netip"
)

// fastExisting forwards the packet nearly every frame is: a plain TCP or
// UDP packet (quickParse takes it) of a live connection to a usable real
// server, that leaves the connection in the state it was in. It is
// process's answer for such a frame, reached with a quarter of the work:
// no full decode into a packet (netip addresses, IPv6 extension walk), the
// key built once from the frame's bytes, one service lookup.
//
// Anything else reports false having changed nothing a verdict depends
// on, and process takes the frame from the start: a frame quickParse
// declines, another director's or our own frame, no service, no entry, an
// entry of a removed, failed, draining or sorry server, a state change (a
// SYN, FIN or RST, the handshake's ACK), a sync record due, persistence
// (the template is refreshed too), a frame over the MTU, a partial
// checksum to complete, or an unknown MAC. It may have done what process
// does first anyway: the pressure update and the connection lookup, which
// lazily reclaims expired entries and gives the same answer when repeated.
// TestFastPathMatchesSlow and FuzzFastPathMatchesSlow hold the two paths
// to the same results, frames, counters and table.
func (f *Forwarder) fastExisting(st *state, frame []byte, m *Meta, now int64) (Result, bool) {
	if f.noFast || m.CsumPartial {
		return Result{}, false
	}
	q, ok := quickParse(frame, &f.key)
	if !ok {
		return Result{}, false
	}
	dirMAC := macAt(frame[0:6])
	if f.own != 0 && macAt(frame[6:12]) == f.own || f.mac != 0 && dirMAC != f.mac {
		return Result{}, false
	}
	vip := netip.AddrFrom16(f.key.VIP)
	if q.v4 {
		vip = vip.Unmap() // decode's netip.AddrFrom4
	}
	s := st.lookupService(f.key.Proto, vip, f.key.VPort)
	if s == nil || s.cfg.Persistence > 0 {
		return Result{}, false
	}
	if f.mtu > 0 && !m.Super && q.l3End-q.l3 > f.mtu {
		return Result{}, false
	}
	f.updatePressure(now)
	e := f.table.Lookup(&f.key, now)
	if e == nil || e.Service != s.slot {
		return Result{}, false
	}
	ref := s.ref(e.Real)
	if ref.r == nil || ref.idx < 0 || !ref.r.usable() || ref.r.drainOver(now) || s.sorryGone(ref.r) {
		return Result{}, false
	}
	state := uint8(stateUDP)
	if f.key.Proto == protoTCP {
		state = tcpNext(e.State, q.tcpFlags)
	}
	if state != e.State || f.sync.events != nil && syncDue(e.Flags, now, f.timeout(st, state)) {
		return Result{}, false
	}
	r := s.server(int(ref.idx))
	mac := r.mac.Load()
	if mac&macKnown == 0 {
		return Result{}, false
	}
	f.table.SetTimeout(e, now, f.timeout(st, state))
	putMAC(frame[6:12], dirMAC)
	putMAC(frame[0:6], mac)
	n := uint64(q.l3End - q.l3)
	rt, sv := &r.totals[f.id], &s.ctr.totals[f.id]
	rt.packets.Add(1)
	rt.bytes.Add(n)
	sv.packets.Add(1)
	sv.bytes.Add(n)
	f.fastHits++
	return Result{Verdict: Forward, Reason: ReasonExisting, Service: s.idx, Real: int(ref.idx)}, true
}
