package connsync

import "time"

// MaxSkew is how far a message's timestamp may be from the receiver's
// clock: older messages are replays (or from a badly wrong clock).
const MaxSkew = 10 * time.Second

// windowBits is how many sequence numbers below the highest seen are
// still accepted once (datagrams may be reordered).
const windowBits = 64

// Window rejects replayed messages from one sender: a message is accepted
// once, if its timestamp is within MaxSkew of now, its epoch is not older
// than the newest seen, and its sequence number was not seen (within the
// last windowBits). A sender that restarts has a newer epoch and starts
// its sequence afresh.
type Window struct {
	epoch uint64
	top   uint64 // highest sequence number accepted in epoch
	seen  uint64 // bit i: top-i was accepted
	any   bool
}

// Check reports whether h is fresh at now and records it if so. Call it
// only for messages whose MAC verified.
func (w *Window) Check(h *Header, now int64) bool {
	if d := now - h.Time; d > int64(MaxSkew) || d < -int64(MaxSkew) {
		return false
	}
	switch {
	case !w.any || h.Epoch > w.epoch:
		w.epoch, w.top, w.seen, w.any = h.Epoch, h.Seq, 1, true
		return true
	case h.Epoch < w.epoch:
		return false
	case h.Seq > w.top:
		shift := h.Seq - w.top
		if shift >= windowBits {
			w.seen = 0
		} else {
			w.seen <<= shift
		}
		w.seen |= 1
		w.top = h.Seq
		return true
	}
	back := w.top - h.Seq
	if back >= windowBits || w.seen&(1<<back) != 0 {
		return false
	}
	w.seen |= 1 << back
	return true
}
