package conntable

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
func (t *Table) Sweep(now int64, budget int) (expired int) {
	if len(t.slots) == 0 {
		return 0
	}
	nowSec := nowSeconds(now)
	for budget > 0 {
		// A run of slots with no entry is skipped unread, all of it:
		// the hand may pass the budget by up to a run (no slot is read
		// there, and what callers bound, the entries removed per call,
		// stays within the budget).
		if c := t.hand >> t.liveShift; t.live[c] == 0 {
			end := min((c+1)<<t.liveShift, len(t.slots))
			budget -= end - t.hand
			t.hand = end
			if t.hand == len(t.slots) {
				t.hand = 0
			}
			continue
		}
		// Skip the live and empty slots up to the budget or the end of
		// the array in one tight loop: this is the common case (most
		// calls find nothing to expire), and one compare per slot that
		// is almost never true predicts well, where testing "occupied"
		// first mispredicted on every other slot of a table at 3/8 load.
		// The scan stops at the end of the run of slots: the next may
		// be skipped.
		runEnd := min((t.hand>>t.liveShift+1)<<t.liveShift, len(t.slots))
		run := t.slots[t.hand:min(t.hand+budget, runEnd)]
		i := firstExpired(run, nowSec)
		t.hand += i
		budget -= i
		if i == len(run) {
			if t.hand == len(t.slots) {
				t.hand = 0
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
// run, or len(run). expires-1 wraps an empty slot (0) to the largest
// value, so one unsigned compare tests "occupied and expired".
func firstExpired(run []Entry, nowSec uint64) int {
	for i := range run {
		if uint64(run[i].expires)-1 < nowSec {
			return i
		}
	}
	return len(run)
}
