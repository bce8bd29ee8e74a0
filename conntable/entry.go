package conntable

import (
	"math"
	"time"
)

// Entry is one slot of the table: a connection or a persistence template.
// The forwarder owns every field except expires, which only the table
// writes (through SetTimeout) because expires == 0 marks an empty slot.
// Entry is 48 bytes with no padding; a test asserts it.
type Entry struct {
	Key     Key
	Service uint16 // forwarder's virtual service id
	Real    uint16 // forwarder's real server id within the service
	State   uint8  // caller-defined (TCP state etc.)
	Flags   uint8  // caller-defined
	expires uint32 // unix seconds, rounded up; 0 = empty slot
}

// Special values of Entry.expires.
const (
	expEmpty   = 0 // the slot holds no entry
	expPending = 1 // inserted, SetTimeout not called yet: already expired
)

// nowSeconds converts the caller's unix-nanosecond clock to the whole
// seconds that expiry compares against. An entry with expires E is expired
// at now iff now >= E*1s, which for now >= 0 is floor(now/1s) >= E.
// A clock before the epoch expires nothing.
//
// The result is capped at math.MaxUint32, the latest expires an entry can
// hold: there every entry has expired already, so a later clock could
// expire nothing more, but it would break the table's one-compare tests
// (firstExpired takes an empty slot's expires-1, which wraps to
// MaxUint32, for "not expired" only while nowSec <= MaxUint32) and Sweep
// would "remove" empty slots. A clock past 2106 is a bad timestamp (a
// replayed capture's, a clock set wrong): it may expire everything, it
// must never corrupt the table.
func nowSeconds(now int64) uint64 {
	if now <= 0 {
		return 0
	}
	return min(uint64(now)/uint64(time.Second), math.MaxUint32)
}

// expiredAt reports whether an occupied entry's time has passed.
func (e *Entry) expiredAt(nowSec uint64) bool {
	return uint64(e.expires) <= nowSec
}

// expirySeconds is ceil((now+d)/1s), clamped to the range a uint32 of
// seconds can hold and never below expPending (0 would mean empty).
func expirySeconds(now int64, d time.Duration) uint32 {
	t := now + int64(d)
	// Saturate on overflow instead of wrapping into the past or future.
	if d > 0 && t < now {
		return math.MaxUint32
	}
	if d < 0 && t > now {
		return expPending
	}
	if t <= 0 {
		return expPending
	}
	s := (uint64(t) + uint64(time.Second) - 1) / uint64(time.Second)
	switch {
	case s > math.MaxUint32:
		return math.MaxUint32
	case s < expPending:
		return expPending
	}
	return uint32(s)
}
