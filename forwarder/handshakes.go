package forwarder

import (
	"net/netip"
	"slices"
	"sync/atomic"
)

// Sizes of a worker's handshake log.
const (
	// handshakeSeen is the direct-mapped set of clients reported lately:
	// a client making many connections is reported once, not once per
	// connection (each report is a system call in the director).
	handshakeSeen = 4096
	// HandshakeBatch bounds the clients TakeHandshakes returns at once;
	// more between two calls are left for their next handshake.
	HandshakeBatch = 256
)

// handshakes collects, per worker, the clients that completed a TCP
// handshake through it: a SYN_RECV entry (from the client's SYN, or an
// ACK adopted under pressure) that a later client packet made
// ESTABLISHED. A director hands them to its port's trusted lane
// (link.ClientTruster), which keeps their next SYNs out of a flood's
// queue. A flood of spoofed SYNs alone never gets here, since no packet
// of its sources follows their SYN; a blind attacker sending an ACK after
// each SYN does (the director never sees the server's SYN-ACK), which is
// why the trusted lane is a queue apart from established traffic's.
type handshakes struct {
	seen    [handshakeSeen]netip.Addr
	pending [HandshakeBatch]netip.Addr
	n       int
	// pendingSlots has a bit for each seen slot that a pending client
	// took since the last TakeHandshakes. Two clients of one slot
	// alternating (a, b, a) take it in turn, and a, finding b there,
	// would be pending twice (and counted twice by the trusted lane). A
	// client can be pending only if its slot's bit is set, so only then
	// is the pending list searched: rarely, and never when none collide.
	pendingSlots [handshakeSeen / 64]uint64
	total        atomic.Uint64 // clients trusted, for Overload
}

// note records that client c completed a handshake.
func (h *handshakes) note(c netip.Addr) {
	i := addrHash(c) % handshakeSeen
	slot := &h.seen[i]
	if *slot == c || h.n == len(h.pending) {
		return
	}
	bit := uint64(1) << (i % 64)
	if h.pendingSlots[i/64]&bit != 0 && slices.Contains(h.pending[:h.n], c) {
		return
	}
	h.pendingSlots[i/64] |= bit
	*slot = c
	h.pending[h.n] = c
	h.n++
}

// addrHash mixes an address's 16 bytes (IPv4 as IPv4-mapped), as the
// fragment table's slot does.
func addrHash(a netip.Addr) uint64 {
	b := a.As16()
	x := le64(b[:8])*0xff51afd7ed558ccd ^ le64(b[8:])*0xc4ceb9fe1a85ec53
	return (x ^ x>>29) * 0xbf58476d1ce4e5b9 >> 32
}

// ForgetHandshakes undoes TakeHandshakes for addrs, which the caller
// could not use (its trusted map refused them): they are reported again
// at their next handshake. Same rules as TakeHandshakes.
func (f *Forwarder) ForgetHandshakes(addrs []netip.Addr) {
	h := &f.hs
	for _, a := range addrs {
		if slot := &h.seen[addrHash(a)%handshakeSeen]; *slot == a {
			*slot = netip.Addr{}
		}
	}
}

// TakeHandshakes appends to dst the clients that completed a TCP
// handshake through this worker since the last call, each once while it
// stays among the last few thousand reported, and returns dst. It must be
// called by the goroutine that calls Process (or under its lock); with
// cap(dst) >= HandshakeBatch it allocates nothing.
func (f *Forwarder) TakeHandshakes(dst []netip.Addr) []netip.Addr {
	h := &f.hs
	if h.n == 0 {
		return dst
	}
	dst = append(dst, h.pending[:h.n]...)
	clear(h.pending[:h.n])
	clear(h.pendingSlots[:])
	h.n = 0
	return dst
}

// HandshakesTrusted counts n clients of a TakeHandshakes that the caller
// put in its trusted lane (Overload.Handshakes). Only those count, not
// the clients reported: the count is exported as a Prometheus counter
// (drlb_trusted_clients_total, "clients put in the trusted lane"), which
// must never go down, so clients the lane refused (ForgetHandshakes) are
// never counted rather than counted and taken back. Any goroutine may
// call it.
func (f *Forwarder) HandshakesTrusted(n int) {
	if n > 0 {
		f.hs.total.Add(uint64(n))
	}
}
