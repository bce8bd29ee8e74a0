package forwarder

import (
	"net/netip"

	"github.com/drlb/drlb/conntable"
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
// entry of a removed, failed, draining or sorry server, a bare SYN, a
// state change (a FIN or RST, the handshake's ACK), a sync record due, a
// frame over the MTU, a partial checksum to complete, or an unknown MAC.
// Before handing over it may have done two things the full path does for
// such a frame, in the same order: the pressure update, and the lookup
// (which lazily reclaims expired entries on the key's probe run). It
// records them in f.fastDid so that connection does neither again: a
// second pressure update after the reclaim could flip the pressure where
// the full path alone would not, and a second lookup of a key found
// absent would cost a random memory access with a large table for nothing
// (nothing changes the table in between). TestFastPathMatchesSlow and
// FuzzFastPathMatchesSlow hold the two paths to the same results, frames,
// counters, pressure and table.
func (f *Forwarder) fastExisting(st *state, frame []byte, m *Meta, now int64) (Result, bool) {
	f.fastDid = fastNothing
	pre := f.pre
	f.pre = nil
	if f.noFast || m.CsumPartial {
		return Result{}, false
	}
	// k and q point at the frame's key and offsets where they are, the
	// prefetch's or f.key and parsed: copying the prefetch's into f.key
	// cost a few percent of a packet, and the full path sets f.key anew.
	var (
		k      *conntable.Key
		q      *plain
		parsed plain
		hash   uint64
	)
	if pre != nil && pre.of(frame) {
		// Parsed and hashed when its slot was prefetched (Ahead).
		k, q, hash = &pre.key, &pre.q, pre.hash
		f.fastPrepared++
	} else if quickParse(frame, &f.key, &parsed) {
		k, q = &f.key, &parsed
		hash = f.table.Hash(k)
	} else {
		return Result{}, false
	}
	if k.Proto == protoTCP && bareSYN(q.tcpFlags) {
		// A bare SYN nearly always opens a connection: the full path
		// is where it ends up, so it goes there at once (a SYN flood
		// pays for the key only).
		return Result{}, false
	}
	dirMAC := macAt(frame[0:6])
	if f.own != 0 && macAt(frame[6:12]) == f.own || f.mac != 0 && dirMAC != f.mac || frame[0]&1 != 0 {
		return Result{}, false
	}
	vip := netip.AddrFrom16(k.VIP)
	if q.v4 {
		vip = vip.Unmap() // decode's netip.AddrFrom4
	}
	s := st.lookupService(k.Proto, vip, k.VPort)
	if s == nil {
		return Result{}, false
	}
	if f.mtu > 0 && !m.Super && q.l3End-q.l3 > f.mtu {
		return Result{}, false
	}
	f.updatePressure(now)
	f.fastDid = fastPressured
	e := f.table.LookupHash(k, hash, now)
	if e == nil {
		f.fastDid = fastFoundNothing
		return Result{}, false
	}
	if e.Service != s.slot {
		return Result{}, false
	}
	ref := s.ref(e.Real)
	if ref.r == nil || ref.idx < 0 || !ref.r.usable() || ref.r.drainOver(now) || s.sorryGone(ref.r) {
		return Result{}, false
	}
	state := uint8(stateUDP)
	if k.Proto == protoTCP {
		state = tcpNext(e.State, q.tcpFlags)
	}
	if state != e.State || f.sync.events != nil && f.resendDue(e, now, f.timeout(st, state)) {
		return Result{}, false
	}
	r := s.server(int(ref.idx))
	mac := r.mac.Load()
	if mac&macKnown == 0 {
		return Result{}, false
	}
	timeout := f.timeout(st, state)
	f.table.SetTimeout(e, now, timeout+f.handOut(e, s, state, timeout))
	if s.cfg.Persistence > 0 {
		// As the full path does, last: the template lookup may move e.
		fl := flow{proto: k.Proto, src: netip.AddrFrom16(k.CIP), dst: vip, srcPort: k.CPort, dstPort: k.VPort}
		if q.v4 {
			fl.src = fl.src.Unmap()
		}
		f.holdTemplate(s, &fl, e.Service, e.Real, f.table.Expires(e), nil, false, now)
	}
	putMAC(frame[6:12], dirMAC)
	putMAC(frame[0:6], mac)
	f.countForwarded(s, r, q.l3End-q.l3)
	f.fastHits++
	return Result{Verdict: Forward, Reason: ReasonExisting, Service: s.idx, Real: int(ref.idx)}, true
}

// fastSteps is how far fastExisting went with a frame it handed to the
// full path.
type fastSteps uint8

const (
	fastNothing      fastSteps = iota // nothing the full path does
	fastPressured                     // the pressure update, then a lookup that found the entry
	fastFoundNothing                  // the pressure update, then a lookup that found no entry
)
