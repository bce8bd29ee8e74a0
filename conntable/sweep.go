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
	for ; budget > 0; budget-- {
		e := &t.slots[t.hand]
		if e.expires != expEmpty && e.expiredAt(nowSec) {
			t.remove(t.hand)
			expired++
			continue
		}
		t.hand = t.next(t.hand)
	}
	return expired
}
