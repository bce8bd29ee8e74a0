package conntable

import (
	"fmt"
	"math"
	"net/netip"
)

// check verifies the table's structural invariants: the count matches the
// occupied slots, at least one slot is empty, every entry is reachable from
// its home slot without crossing an empty slot (what backward shift must
// preserve), and no key appears twice.
func (t *Table) check() error {
	occupied := 0
	seen := make(map[Key]int, t.n)
	for j := range t.slots {
		e := &t.slots[j]
		if e.expires == expEmpty {
			if e.Key != (Key{}) || e.Service != 0 || e.Real != 0 || e.State != 0 || e.Flags != 0 {
				return fmt.Errorf("empty slot %d not zeroed: %+v", j, *e)
			}
			continue
		}
		occupied++
		if prev, dup := seen[e.Key]; dup {
			return fmt.Errorf("key %v in slots %d and %d", e.Key, prev, j)
		}
		seen[e.Key] = j
		for i := t.home(hashKey(&e.Key, t.seed)); i != j; i = t.next(i) {
			if t.slots[i].expires == expEmpty {
				return fmt.Errorf("slot %d: empty slot %d between home and entry", j, i)
			}
		}
	}
	if occupied != t.n {
		return fmt.Errorf("Len %d, occupied slots %d", t.n, occupied)
	}
	for c, n := range t.live {
		got := 0
		for _, e := range t.slots[c<<t.liveShift : min((c+1)<<t.liveShift, len(t.slots))] {
			if e.expires != expEmpty {
				got++
			}
		}
		if int(n) != got {
			return fmt.Errorf("run %d: live count %d, occupied slots %d", c, n, got)
		}
	}
	// Sweep skips from run boundaries only: outside a run it reads, the
	// hand is at one (the skip charges the budget the slots it passes).
	if !t.inRun && t.hand&(1<<t.liveShift-1) != 0 {
		return fmt.Errorf("hand %d inside a run of %d slots while no run is being read", t.hand, 1<<t.liveShift)
	}
	// Outside the run the hand is reading, a run's due bound is no
	// later than any of its entries' expiry (Sweep skips the run on
	// it); inside, the entries behind the hand are covered by it or by
	// what the hand found (sweepLeast), and the ones ahead of it will be
	// read before the run gets a bound again.
	for j := range t.slots {
		e := &t.slots[j]
		if e.expires == expEmpty {
			continue
		}
		c := j >> t.liveShift
		bound := t.due[c]
		if t.inRun && c == t.hand>>t.liveShift {
			if j >= t.hand {
				continue
			}
			if t.sweepLeast != math.MaxUint32 {
				bound = min(bound, t.sweepLeast+1)
			}
		}
		if e.expires < bound {
			return fmt.Errorf("slot %d expires at %d, before its run's due bound %d (hand %d, in run %v)", j, e.expires, bound, t.hand, t.inRun)
		}
	}
	if occupied >= len(t.slots) {
		return fmt.Errorf("no empty slot: %d of %d", occupied, len(t.slots))
	}
	if t.n > t.max {
		return fmt.Errorf("Len %d > Max %d", t.n, t.max)
	}
	return nil
}

// testKey builds a distinct IPv4 TCP connection key from i.
func testKey(i int) Key {
	c := netip.AddrFrom4([4]byte{198, 18, byte(i >> 16), byte(i >> 8)})
	return Key{
		CIP:   c.As16(),
		VIP:   netip.AddrFrom4([4]byte{198, 18, 0, 100}).As16(),
		CPort: uint16(1024 + i&0xff),
		VPort: 80,
		Proto: 6,
	}
}

// setLiveShift makes the empty table's runs of slots 1<<shift long, so
// that a small table has many and the model crosses their boundaries.
func (t *Table) setLiveShift(shift uint8) {
	if t.n != 0 {
		panic("setLiveShift on a table with entries")
	}
	t.liveShift = shift
	t.live = make([]uint16, (len(t.slots)+1<<shift-1)>>shift)
	t.due = make([]uint32, len(t.live))
	t.hand, t.inRun = 0, false
}
