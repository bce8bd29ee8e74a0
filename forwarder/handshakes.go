package forwarder

import (
	"net/netip"
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
	total   atomic.Uint64 // clients reported, for Overload
}

// note records that client c completed a handshake.
func (h *handshakes) note(c netip.Addr) {
	slot := &h.seen[addrHash(c)%handshakeSeen]
	if *slot == c || h.n == len(h.pending) {
		return
	}
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
// at their next handshake and no longer counted. Same rules as
// TakeHandshakes.
func (f *Forwarder) ForgetHandshakes(addrs []netip.Addr) {
	h := &f.hs
	for _, a := range addrs {
		if slot := &h.seen[addrHash(a)%handshakeSeen]; *slot == a {
			*slot = netip.Addr{}
			h.total.Add(^uint64(0))
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
	dst = append(dst, h.pending[:h.n]...)
	h.total.Add(uint64(h.n))
	clear(h.pending[:h.n])
	h.n = 0
	return dst
}
