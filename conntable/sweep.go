package conntable

import "math"

// Sweep examines at most budget slots from a clock hand that persists across
// calls and wraps around the slot array, removing the expired entries it
// finds (OnExpire is called for each). It returns how many it removed.
// Call it from the forwarding loop with a small budget so expiry costs a
// bounded, predictable slice of every batch; the hand completes a turn
// about every Slots()/budget calls. Live entries are never removed.
//
// When an entry is removed, backward shift may move the next entry of its
// run into the hand's slot, so the hand stays and examines that slot again
// (it counts against the budget): nothing is skipped and nothing is removed
// twice. A budget of 2*Slots() always completes a full turn (each slot once
// plus one re-examination per removal). Entries moved behind the hand by other calls between sweeps are
// found on the next turn, or lazily by Lookup and Insert before that.
//
// A run of 256 slots with no entry, or none that can have expired yet
// (Table.due), is passed over unread and counts whole against the
// budget: in a table of long-lived connections the hand then goes round
// reading two small arrays, and reads slots only where an entry was
// inserted or may have expired since its last turn.
func (t *Table) Sweep(now int64, budget int) (expired int) {
	if len(t.slots) == 0 {
		return 0
	}
	nowSec := nowSeconds(now)
	// Two turns' worth finds all there is: more would only go round
	// again (runs passed over count whole, so a huge budget would spin).
	budget = min(budget, 2*len(t.slots))
	for budget > 0 {
		c := t.hand >> t.liveShift
		runEnd := min((c+1)<<t.liveShift, len(t.slots))
		if !t.inRun {
			// The hand is at the start of run c. A run with no entry,
			// or none that can have expired yet (its due bound is
			// later than now), is skipped unread, all of it: the hand
			// may pass the budget by up to a run (no slot is read
			// there, and what callers bound, the entries removed per
			// call, stays within the budget).
			if t.live[c] == 0 || uint64(t.due[c]) > nowSec {
				budget -= runEnd - t.hand
				t.hand = runEnd
				if t.hand == len(t.slots) {
					t.hand = 0
				}
				continue
			}
			// Read it, rebuilding its bound from what the hand finds
			// there; Insert, SetTimeout and remove lower it meanwhile
			// for entries that change behind the hand.
			t.inRun, t.due[c], t.sweepLeast = true, math.MaxUint32, math.MaxUint32
		}
		// Skip the live and empty slots up to the budget or the end of
		// the run in one tight loop: this is the common case (most
		// calls find nothing to expire), and one compare per slot that
		// is almost never true predicts well, where testing "occupied"
		// first mispredicted on every other slot of a table at 3/8 load.
		run := t.slots[t.hand : t.hand+min(budget, runEnd-t.hand)] // hand+budget may overflow
		i, least := firstExpired(run, nowSec)
		t.sweepLeast = min(t.sweepLeast, least)
		t.hand += i
		budget -= i
		if i == len(run) {
			if t.hand == runEnd {
				if t.sweepLeast != math.MaxUint32 {
					t.due[c] = min(t.due[c], t.sweepLeast+1)
				}
				t.inRun = false
				if t.hand == len(t.slots) {
					t.hand = 0
				}
			}
			continue
		}
		// Slot t.hand expired: remove it and look at it again (it may
		// now hold the next entry of its run).
		t.remove(t.hand)
		expired++
		budget--
	}
	return expired
}

// firstExpired returns the index of the first occupied, expired entry of
// run, or len(run), and the least expires-1 of the occupied entries
// before it (math.MaxUint32 if none). expires-1 wraps an empty slot (0)
// to the largest value, so one unsigned compare tests "occupied and
// expired", and the minimum leaves empty slots out by itself; that needs
// nowSec <= math.MaxUint32, which nowSeconds guarantees.
func firstExpired(run []Entry, nowSec uint64) (int, uint32) {
	least := uint32(math.MaxUint32)
	for i := range run {
		x := run[i].expires - 1
		if uint64(x) < nowSec {
			return i, least
		}
		least = min(least, x)
	}
	return len(run), least
}
