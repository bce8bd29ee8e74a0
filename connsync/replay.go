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
//
// The epoch is the sender's clock at its start, so a sender restarted
// with its clock behind its previous start (a VM restored from a
// snapshot, a clock stepped back) has an older one. Once the newest epoch
// has been silent for longer than MaxSkew, an older epoch is taken as
// such a restart: none of the newest epoch's messages can still pass the
// time check, and a replay of an older one's cannot either (its
// timestamp is from before the newest epoch began). Without this, every
// message of the restarted peer was a replay until this side restarted.
type Window struct {
	epoch uint64
	top   uint64 // highest sequence number accepted in epoch
	seen  uint64 // bit i: top-i was accepted
	last  int64  // receiver's time of the last message accepted
	any   bool
}

// Check reports whether h is fresh at now and records it if so. Call it
// only for messages whose MAC verified.
func (w *Window) Check(h *Header, now int64) bool {
	if d := now - h.Time; d > int64(MaxSkew) || d < -int64(MaxSkew) {
		return false
	}
	switch {
	case !w.any || h.Epoch > w.epoch || h.Epoch < w.epoch && now-w.last > int64(MaxSkew):
		w.epoch, w.top, w.seen, w.any, w.last = h.Epoch, h.Seq, 1, true, now
		return true
	case h.Epoch < w.epoch:
		return false
	}
	w.last = now
	switch {
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
