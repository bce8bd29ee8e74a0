package conntable

import "math/bits"

// home maps a hash to its slot with Lemire's multiply-shift range reduction:
// the high word of h*nslots is uniform over [0, nslots) for uniform h, with
// no division and no power-of-two slot count.
func (t *Table) home(h uint64) int {
	hi, _ := bits.Mul64(h, t.nslots)
	return int(hi)
}

// next is the following slot of a linear probe, wrapping at the end.
func (t *Table) next(i int) int {
	i++
	if i == len(t.slots) {
		i = 0
	}
	return i
}

// Lookup returns the live entry for k, or nil if there is none. now is unix
// nanoseconds. Expired entries met on k's probe run, k's own included, are
// removed on the way (OnExpire is called for each), so the returned pointer
// is valid only until the next Lookup, Insert, Delete or Sweep.
func (t *Table) Lookup(k *Key, now int64) *Entry {
	if k == nil {
		return nil
	}
	return t.LookupHash(k, hashKey(k, t.seed), now)
}

// Hash is k's hash in t, for LookupHash and PrefetchHash: a caller that
// prefetches a key's slot ahead of its lookup hashes it once.
func (t *Table) Hash(k *Key) uint64 { return hashKey(k, t.seed) }

// LookupHash is Lookup with k's hash already known (h must be t.Hash(k)).
func (t *Table) LookupHash(k *Key, h uint64, now int64) *Entry {
	if k == nil || len(t.slots) == 0 {
		return nil
	}
	nowSec := nowSeconds(now)
	i := t.home(h)
	for {
		e := &t.slots[i]
		if e.expires == expEmpty {
			return nil
		}
		if e.expiredAt(nowSec) {
			// Slot i now holds the next entry of the run, or nothing.
			t.remove(i)
			continue
		}
		if keyEqual(&e.Key, k) {
			return e
		}
		i = t.next(i)
	}
}

// Insert adds a new entry for k and returns it zeroed but for Key. The new
// entry is already expired until the caller calls SetTimeout, which it must
// do before any other call on the table; then it fills Service, Real, State
// and Flags. If a live entry for k exists, Insert returns it with ErrExists.
// If the table holds Max entries, Insert first reclaims expired entries on
// k's probe run, then sweeps a few more slots or, with Options.Evictable,
// frees one slot near the eviction hand (an expired entry, else an
// approved live one: see evict), then fails with ErrFull; it never evicts an entry Evictable
// does not approve. The pointer is valid until the next mutation.
func (t *Table) Insert(k *Key, now int64) (*Entry, error) {
	if k == nil {
		return nil, ErrNilKey
	}
	if len(t.slots) == 0 { // a zero Table, not made by New
		return nil, ErrFull
	}
	nowSec := nowSeconds(now)
	start := t.home(hashKey(k, t.seed))
	swept, evicted := false, false
	for {
		i := start
		for {
			e := &t.slots[i]
			if e.expires == expEmpty {
				break
			}
			if e.expiredAt(nowSec) {
				t.remove(i)
				continue
			}
			// Once k's run was probed in full, k is known absent: a
			// removal moves entries but adds none.
			if !swept && !evicted && keyEqual(&e.Key, k) {
				return e, ErrExists
			}
			i = t.next(i)
		}
		if t.n < t.max {
			e := &t.slots[i]
			*e = Entry{Key: *k, expires: expPending}
			t.n++
			t.live[i>>t.liveShift]++
			t.due[i>>t.liveShift] = expPending
			return e, nil
		}
		// Full. A sweep or an eviction may shift k's run, so probe it
		// again afterwards: at most three probes in all.
		// With Evictable, evict removes an expired entry it meets first
		// anyway: no separate sweep.
		if !swept && t.evictOK == nil {
			swept = true
			if t.Sweep(now, fullSweepBudget) > 0 {
				continue
			}
		}
		swept = true
		if evicted || !t.evict(nowSec) {
			return nil, ErrFull
		}
		evicted = true
	}
}

// evict frees one slot in a full table: it examines evictScan slots from
// the eviction hand (more, up to evictScanMax, until one is evictable),
// which then moves past them, and removes the first
// expired entry it meets or else the entry Options.Evictable approves with
// the earliest expiry (the first of equals). It reports whether it freed
// a slot.
func (t *Table) evict(nowSec uint64) bool {
	if t.evictOK == nil {
		return false
	}
	best := -1
	var bestExp uint32
	i := t.ehand
	limit := min(evictScanMax, len(t.slots))
	for n := 0; n < limit && (n < evictScan || best < 0); n++ {
		e := &t.slots[i]
		if e.expires != expEmpty {
			if e.expiredAt(nowSec) {
				t.remove(i)
				t.ehand = i
				return true
			}
			if (best < 0 || e.expires < bestExp) && t.evictOK(e) {
				best, bestExp = i, e.expires
			}
		}
		i = t.next(i)
	}
	t.ehand = i
	if best < 0 {
		return false
	}
	t.remove(best)
	t.evicted++
	return true
}

// Delete removes e from the table and calls OnExpire for it. e must come
// from Lookup or Insert on this table with no mutation since; a nil pointer,
// a foreign pointer or one to an already emptied slot is ignored.
func (t *Table) Delete(e *Entry) {
	i := t.index(e)
	if i < 0 || t.slots[i].expires == expEmpty {
		return
	}
	t.remove(i)
}

// remove empties occupied slot i, calling OnExpire first, and closes the gap
// by backward shift: each following entry of the run that may legally sit
// earlier (its home is not cyclically within (hole, j]) moves into the hole,
// so no tombstones are needed and every run stays contiguous. Entries only
// ever move into slots at or after i along the run: a scan that re-examines
// slot i after remove skips nothing.
func (t *Table) remove(i int) {
	if t.onExpire != nil {
		t.onExpire(&t.slots[i])
	}
	t.n--
	hole := i
	j := i
	for {
		j = t.next(j)
		s := &t.slots[j]
		if s.expires == expEmpty {
			break
		}
		h := t.home(hashKey(&s.Key, t.seed))
		if hole <= j {
			if hole < h && h <= j {
				continue
			}
		} else if hole < h || h <= j {
			continue
		}
		t.slots[hole] = *s
		t.due[hole>>t.liveShift] = min(t.due[hole>>t.liveShift], s.expires)
		hole = j
	}
	// The entries moved along the run; the slot left empty is the last
	// hole's.
	t.slots[hole] = Entry{}
	t.live[hole>>t.liveShift]--
}
