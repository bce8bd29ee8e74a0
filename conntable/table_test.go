package conntable

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

// t0 is a realistic fake clock origin: 2025-01-01T00:00:00Z in unix ns.
const t0 = int64(1735689600) * int64(time.Second)

func TestSizes(t *testing.T) {
	if got := unsafe.Sizeof(Entry{}); got != 48 {
		t.Errorf("unsafe.Sizeof(Entry{}) = %d, want 48", got)
	}
	if got := unsafe.Sizeof(Key{}); got != 38 {
		t.Errorf("unsafe.Sizeof(Key{}) = %d, want 38", got)
	}
}

func TestNewBadOptions(t *testing.T) {
	for _, max := range []int{0, -1, math.MinInt, MaxEntries + 1} {
		if _, err := New(Options{Max: max}); !errors.Is(err, ErrBadOptions) {
			t.Errorf("New(Max: %d) error = %v, want ErrBadOptions", max, err)
		}
	}
}

func TestSizing(t *testing.T) {
	for _, tc := range []struct {
		max, slots int
	}{
		{1, 2},
		{2, 3},
		{3, 4},
		{4, 5},
		{100, 133},
		{1000000, 1333333},
	} {
		tb, err := New(Options{Max: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		if tb.Slots() != tc.slots || tb.Cap() != tc.max {
			t.Errorf("Max %d: Slots %d Cap %d, want %d %d", tc.max, tb.Slots(), tb.Cap(), tc.slots, tc.max)
		}
		// Rounding the slot count down keeps slot bytes per entry <= 64; the
		// load factor at Max is then 0.75 give or take one slot.
		if tc.max >= 3 {
			if b := tb.Slots() * int(unsafe.Sizeof(Entry{})); b > 64*tc.max {
				t.Errorf("Max %d: %d slot bytes > 64 per entry", tc.max, b)
			}
		}
		if tc.max >= 100 {
			if lf := float64(tc.max) / float64(tb.Slots()-1); lf > 0.76 {
				t.Errorf("Max %d: load factor at Max %.4f > ~0.75", tc.max, lf)
			}
		}
		if tc.max >= 1000000 {
			if bpc := float64(tb.Bytes()) / float64(tc.max); bpc > 64.001 {
				t.Errorf("Max %d: %.4f bytes/conn (header included) > 64", tc.max, bpc)
			}
		}
	}
}

func TestExpirySeconds(t *testing.T) {
	s := int64(time.Second)
	for _, tc := range []struct {
		name string
		now  int64
		d    time.Duration
		want uint32
	}{
		{"whole", 10 * s, 5 * time.Second, 15},
		{"round up", 10*s + 1, 5 * time.Second, 16},
		{"round up d", 10 * s, 5*time.Second + 1, 16},
		{"zero d", 10*s + 500, 0, 11},
		{"zero d on second", 10 * s, 0, 10},
		{"negative d", 10 * s, -20 * time.Second, expPending},
		{"before epoch", -5 * s, time.Second, expPending},
		{"epoch", 0, 0, expPending},
		{"saturate", t0, time.Duration(math.MaxInt64), math.MaxUint32},
		{"past 2106", int64(math.MaxUint32) * s, 10 * time.Second, math.MaxUint32},
		{"min d", t0, time.Duration(math.MinInt64), expPending},
	} {
		if got := expirySeconds(tc.now, tc.d); got != tc.want {
			t.Errorf("%s: expirySeconds(%d, %v) = %d, want %d", tc.name, tc.now, tc.d, got, tc.want)
		}
	}
}

// expireLog counts OnExpire calls per key.
type expireLog map[Key]int

func (l expireLog) fn(e *Entry) { l[e.Key]++ }

func TestLifecycle(t *testing.T) {
	sec := int64(time.Second)
	k := testKey(1)
	tmpl := k
	tmpl.Kind = KindTemplate
	tmpl.CPort = 0

	type step struct {
		op     string // insert, lookup, delete, sweep, refresh
		key    Key
		at     int64         // fake clock offset from t0
		d      time.Duration // insert/refresh timeout
		want   bool          // lookup: found; insert: succeeded
		err    error         // insert error
		expire int           // OnExpire count for key after the step
		length int           // Len after the step
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"insert lookup expire by lookup", []step{
			{op: "insert", key: k, d: 10 * time.Second, want: true, length: 1},
			{op: "lookup", key: k, at: 9 * sec, want: true, length: 1},
			{op: "lookup", key: k, at: 10*sec - 1, want: true, length: 1},
			{op: "lookup", key: k, at: 10 * sec, want: false, expire: 1, length: 0},
			{op: "lookup", key: k, at: 11 * sec, want: false, expire: 1, length: 0},
		}},
		{"exists then reinsert after expiry", []step{
			{op: "insert", key: k, d: 5 * time.Second, want: true, length: 1},
			{op: "insert", key: k, at: sec, d: 5 * time.Second, err: ErrExists, length: 1},
			{op: "insert", key: k, at: 6 * sec, d: 5 * time.Second, want: true, expire: 1, length: 1},
			{op: "lookup", key: k, at: 7 * sec, want: true, expire: 1, length: 1},
		}},
		{"refresh extends", []step{
			{op: "insert", key: k, d: 5 * time.Second, want: true, length: 1},
			{op: "refresh", key: k, at: 4 * sec, d: 5 * time.Second, want: true, length: 1},
			{op: "lookup", key: k, at: 8 * sec, want: true, length: 1},
			{op: "sweep", key: k, at: 9 * sec, expire: 1, length: 0},
		}},
		{"delete calls OnExpire once", []step{
			{op: "insert", key: k, d: time.Hour, want: true, length: 1},
			{op: "delete", key: k, expire: 1, length: 0},
			{op: "lookup", key: k, want: false, expire: 1, length: 0},
			{op: "sweep", key: k, at: 2 * time.Hour.Nanoseconds(), expire: 1, length: 0},
		}},
		{"template and conn are distinct", []step{
			{op: "insert", key: k, d: time.Minute, want: true, length: 1},
			{op: "insert", key: tmpl, d: time.Hour, want: true, length: 2},
			{op: "lookup", key: k, at: 2 * time.Minute.Nanoseconds(), want: false, expire: 1, length: 1},
			{op: "lookup", key: tmpl, at: 2 * time.Minute.Nanoseconds(), want: true, length: 1},
		}},
		{"pending insert is expired", []step{
			{op: "insert", key: k, d: -1, want: true, length: 1},
			{op: "lookup", key: k, want: false, expire: 1, length: 0},
		}},
		{"sweep leaves live", []step{
			{op: "insert", key: k, d: time.Minute, want: true, length: 1},
			{op: "sweep", key: k, at: 59 * sec, length: 1},
			{op: "lookup", key: k, at: 59 * sec, want: true, length: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := expireLog{}
			tb, err := New(Options{Max: 8, OnExpire: log.fn})
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				now := t0 + s.at
				switch s.op {
				case "insert":
					e, err := tb.Insert(&s.key, now)
					if !errors.Is(err, s.err) {
						t.Fatalf("step %d: Insert error %v, want %v", i, err, s.err)
					}
					if (err == nil) != s.want {
						t.Fatalf("step %d: Insert ok = %v, want %v", i, err == nil, s.want)
					}
					if err == nil && s.d >= 0 {
						tb.SetTimeout(e, now, s.d)
					}
				case "lookup", "refresh":
					e := tb.Lookup(&s.key, now)
					if (e != nil) != s.want {
						t.Fatalf("step %d: Lookup found = %v, want %v", i, e != nil, s.want)
					}
					if e != nil && e.Key != s.key {
						t.Fatalf("step %d: Lookup returned key %v", i, e.Key)
					}
					if s.op == "refresh" && e != nil {
						tb.SetTimeout(e, now, s.d)
					}
				case "delete":
					tb.Delete(tb.Lookup(&s.key, now))
				case "sweep":
					tb.Sweep(now, 2*tb.Slots())
				}
				if log[s.key] != s.expire {
					t.Fatalf("step %d (%s): OnExpire count %d, want %d", i, s.op, log[s.key], s.expire)
				}
				if tb.Len() != s.length {
					t.Fatalf("step %d (%s): Len %d, want %d", i, s.op, tb.Len(), s.length)
				}
				if err := tb.check(); err != nil {
					t.Fatalf("step %d (%s): %v", i, s.op, err)
				}
			}
		})
	}
}

func TestDeleteIgnoresBadPointers(t *testing.T) {
	log := expireLog{}
	tb, _ := New(Options{Max: 4, OnExpire: log.fn})
	other, _ := New(Options{Max: 4})
	k := testKey(3)
	e, _ := tb.Insert(&k, t0)
	tb.SetTimeout(e, t0, time.Minute)
	oe, _ := other.Insert(&k, t0)

	tb.Delete(nil)
	tb.Delete(&Entry{Key: k, expires: 99})
	tb.Delete(oe)
	// A pointer into the middle of a slot.
	tb.Delete((*Entry)(unsafe.Add(unsafe.Pointer(e), 8)))
	if tb.Len() != 1 || len(log) != 0 {
		t.Fatalf("bad pointers removed something: Len %d, expired %v", tb.Len(), log)
	}
	tb.Delete(e)
	tb.Delete(e) // stale: slot now empty
	if tb.Len() != 0 || log[k] != 1 {
		t.Fatalf("Len %d, OnExpire %d, want 0, 1", tb.Len(), log[k])
	}
	tb.SetTimeout(e, t0, time.Hour) // stale: must not resurrect the slot
	if err := tb.check(); err != nil {
		t.Fatal(err)
	}
	if tb.Expires(nil) != 0 || !tb.Expired(nil, t0) {
		t.Fatal("nil entry: Expires != 0 or not Expired")
	}
}

func TestNilAndZero(t *testing.T) {
	tb, _ := New(Options{Max: 4})
	if tb.Lookup(nil, t0) != nil {
		t.Error("Lookup(nil) found something")
	}
	if _, err := tb.Insert(nil, t0); !errors.Is(err, ErrNilKey) {
		t.Errorf("Insert(nil) error %v, want ErrNilKey", err)
	}
	var zero Table // not made by New: every call must be harmless
	k := testKey(1)
	if zero.Lookup(&k, t0) != nil || zero.Sweep(t0, 10) != 0 || zero.Len() != 0 {
		t.Error("zero Table not empty")
	}
	if _, err := zero.Insert(&k, t0); !errors.Is(err, ErrFull) {
		t.Errorf("zero Table Insert error %v, want ErrFull", err)
	}
	zero.Delete(&Entry{})
	zero.Range(func(*Entry) bool { t.Error("zero Table Range yielded"); return true })
}

func TestFullTable(t *testing.T) {
	const max = 50
	log := expireLog{}
	tb, _ := New(Options{Max: max, OnExpire: log.fn})
	// Half the entries expire after 10s, half after an hour.
	for i := range max {
		k := testKey(i)
		e, err := tb.Insert(&k, t0)
		if err != nil {
			t.Fatalf("Insert %d: %v", i, err)
		}
		d := time.Hour
		if i%2 == 0 {
			d = 10 * time.Second
		}
		tb.SetTimeout(e, t0, d)
	}
	extra := testKey(max)
	if _, err := tb.Insert(&extra, t0); !errors.Is(err, ErrFull) {
		t.Fatalf("Insert into full table: %v, want ErrFull", err)
	}
	if len(log) != 0 || tb.Len() != max {
		t.Fatalf("full insert evicted live entries: %v", log)
	}
	// After the short ones expire, inserts succeed by reclaiming them, and
	// exactly max/2 new keys fit.
	now := t0 + 11*int64(time.Second)
	added := 0
	for i := max; i < 3*max; i++ {
		k := testKey(i)
		e, err := tb.Insert(&k, now)
		if errors.Is(err, ErrFull) {
			continue
		}
		if err != nil {
			t.Fatalf("Insert %d: %v", i, err)
		}
		tb.SetTimeout(e, now, time.Hour)
		added++
	}
	// Some inserts may have failed before a sweep reached the stale entries;
	// a full sweep then makes room for the rest.
	tb.Sweep(now, 2*tb.Slots())
	for i := 3 * max; added < max/2; i++ {
		k := testKey(i)
		e, err := tb.Insert(&k, now)
		if err != nil {
			t.Fatalf("Insert %d after sweep: %v (added %d)", i, err, added)
		}
		tb.SetTimeout(e, now, time.Hour)
		added++
	}
	k := testKey(10 * max)
	if _, err := tb.Insert(&k, now); !errors.Is(err, ErrFull) {
		t.Fatalf("Insert into refilled table: %v, want ErrFull", err)
	}
	for i := range max {
		k := testKey(i)
		want := 0
		if i%2 == 0 {
			want = 1
		}
		if log[k] != want {
			t.Fatalf("key %d: OnExpire %d times, want %d", i, log[k], want)
		}
		if got := tb.Lookup(&k, now) != nil; got != (i%2 == 1) {
			t.Fatalf("key %d: present %v after refill", i, got)
		}
	}
	if err := tb.check(); err != nil {
		t.Fatal(err)
	}
}

func TestRange(t *testing.T) {
	tb, _ := New(Options{Max: 10})
	for i := range 5 {
		k := testKey(i)
		e, _ := tb.Insert(&k, t0)
		tb.SetTimeout(e, t0, time.Duration(i+1)*time.Second)
		e.Service = uint16(i)
	}
	sum, n := 0, 0
	tb.Range(func(e *Entry) bool { sum += int(e.Service); n++; return true })
	if n != 5 || sum != 0+1+2+3+4 {
		t.Fatalf("Range saw %d entries, service sum %d", n, sum)
	}
	n = 0
	tb.Range(func(e *Entry) bool { n++; return false })
	if n != 1 {
		t.Fatalf("Range did not stop: %d calls", n)
	}
	now := t0 + 3*int64(time.Second)
	live := 0
	tb.Range(func(e *Entry) bool {
		if !tb.Expired(e, now) {
			live++
			if tb.Expires(e) <= now {
				t.Errorf("live entry Expires %d <= now %d", tb.Expires(e), now)
			}
		}
		return true
	})
	if live != 2 {
		t.Fatalf("live at +3s = %d, want 2", live)
	}
}

// TestSweepSkipsEmptyRuns: over a table of many runs of slots, a few
// entries, some expired: one pass of the budget the table's size expires
// exactly the expired ones wherever they sit, skipping the empty runs,
// and the per-run counts stay right through inserts, removals and the
// backward shift across run boundaries.
func TestSweepSkipsEmptyRuns(t *testing.T) {
	now := int64(1_000) * int64(time.Second)
	tb := tableOf(t, 100_000, 600, now, func(i int) time.Duration {
		if i%2 == 0 {
			return time.Second
		}
		return time.Hour
	})
	if len(tb.live) < 8 {
		t.Fatalf("%d runs: the test wants many", len(tb.live))
	}
	if err := tb.check(); err != nil {
		t.Fatal(err)
	}
	later := now + 2*int64(time.Second)
	if got := tb.Sweep(later, tb.Slots()); got != 300 {
		t.Errorf("one pass expired %d, want 300", got)
	}
	if err := tb.check(); err != nil {
		t.Fatal(err)
	}
	if tb.Len() != 300 || tb.Sweep(later, tb.Slots()) != 0 {
		t.Errorf("after the pass: %d entries, want 300, and nothing more to expire", tb.Len())
	}
	// A run that empties is skipped from then on: every entry gone, a
	// pass reads no slot and expires nothing.
	for i := 1; i < 600; i += 2 {
		k := testKey(i)
		if e := tb.Lookup(&k, later); e != nil {
			tb.Delete(e)
		}
	}
	for c, n := range tb.live {
		if n != 0 {
			t.Errorf("run %d counts %d entries in an empty table", c, n)
		}
	}
	if err := tb.check(); err != nil {
		t.Fatal(err)
	}
}

// TestSweepSkipsRunsNotDue: once a turn of the hand has read a table of
// long-lived entries, a run where nothing can have expired is passed over
// whole (one call with a budget of 8 moves the hand a run, 256 slots);
// an entry whose timeout was brought forward, and one inserted and left
// pending, are still found and expired by the next turn, nothing else.
func TestSweepSkipsRunsNotDue(t *testing.T) {
	now := int64(1_000) * int64(time.Second)
	tb := tableOf(t, 100_000, 5000, now, func(int) time.Duration { return time.Hour })
	if got := tb.Sweep(now, tb.Slots()); got != 0 || tb.hand != 0 {
		t.Fatalf("a first turn expired %d and left the hand at %d, want 0 and 0", got, tb.hand)
	}
	run := 1 << tb.liveShift
	for range 10 {
		from := tb.hand
		tb.Sweep(now, 8)
		if tb.hand != from+run {
			t.Fatalf("a run of live entries due in an hour: the hand moved from %d to %d, want a whole run (%d slots)", from, tb.hand, run)
		}
	}
	sooner := testKey(4321)
	tb.SetTimeout(tb.Lookup(&sooner, now), now, time.Second)
	pending := testKey(99_999)
	if _, err := tb.Insert(&pending, now); err != nil {
		t.Fatal(err)
	}
	if err := tb.check(); err != nil {
		t.Fatal(err)
	}
	later := now + 2*int64(time.Second)
	if got := tb.Sweep(later, 2*tb.Slots()); got != 2 { // a full turn, removals included
		t.Errorf("a turn after one timeout was brought forward and one entry left pending expired %d, want 2", got)
	}
	if err := tb.check(); err != nil {
		t.Fatal(err)
	}
	if tb.Lookup(&sooner, later) != nil || tb.Len() != 4999 {
		t.Errorf("after the turn: %d entries, want 4999, the shortened one gone", tb.Len())
	}
}

// TestSweepHugeBudget: any budget is taken, math.MaxInt included (hand
// plus budget overflowed a slice bound).
func TestSweepHugeBudget(t *testing.T) {
	now := int64(1_000) * int64(time.Second)
	tb := tableOf(t, 1000, 500, now, func(int) time.Duration { return time.Second })
	tb.Sweep(now, 10)
	if got := tb.Sweep(now+2*int64(time.Second), math.MaxInt); got != 500 || tb.Len() != 0 {
		t.Fatalf("Sweep(later, MaxInt) expired %d, left %d; want 500, 0", got, tb.Len())
	}
}

// TestClockPast2106: a clock past what an entry's uint32 of seconds holds
// (a replayed capture's bad timestamps, a clock set wrong) may expire
// every entry but must never corrupt the table. From 2^32 s on,
// firstExpired took empty slots (expires-1 wraps to MaxUint32) for
// expired ones: Sweep called OnExpire on zero entries and drove Len
// negative.
func TestClockPast2106(t *testing.T) {
	s := int64(time.Second)
	for _, tc := range []struct {
		name string
		now  int64
	}{
		{"last uint32 second", math.MaxUint32 * s},
		{"2^32 s", (1<<32 + 10) * s},
		{"int64 max", math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expired := expireLog{}
			tb, err := New(Options{Max: 16, OnExpire: expired.fn})
			if err != nil {
				t.Fatal(err)
			}
			// Entries from before, the longest-lived saturated, and one
			// inserted at the far clock itself.
			for i, d := range []time.Duration{time.Second, time.Hour, math.MaxInt64} {
				k := testKey(i)
				e, err := tb.Insert(&k, t0)
				if err != nil {
					t.Fatal(err)
				}
				tb.SetTimeout(e, t0, d)
			}
			k := testKey(3)
			e, err := tb.Insert(&k, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			tb.SetTimeout(e, tc.now, time.Hour)
			if got := tb.Sweep(tc.now, 2*tb.Slots()); got != 4 {
				t.Errorf("Sweep expired %d, want the 4 entries", got)
			}
			if got := tb.Sweep(tc.now, 2*tb.Slots()); got != 0 {
				t.Errorf("a second Sweep expired %d, want 0", got)
			}
			if err := tb.check(); err != nil || tb.Len() != 0 || len(expired) != 4 {
				t.Fatalf("Len %d, OnExpire for %d keys (want 0 and 4), check: %v", tb.Len(), len(expired), err)
			}
			for k, n := range expired {
				if n != 1 {
					t.Errorf("OnExpire %d times for %v", n, k)
				}
			}
			// The table still works at that clock: an insert finds room,
			// and its entry, expired at once, goes with the next lookup.
			if _, err := tb.Insert(&k, tc.now); err != nil || tb.Len() != 1 {
				t.Fatalf("Insert at the far clock: %v, Len %d", err, tb.Len())
			}
			if tb.Lookup(&k, tc.now) != nil || tb.Len() != 0 {
				t.Errorf("Lookup at the far clock found a live entry, Len %d", tb.Len())
			}
			if err := tb.check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// tableOf is a table for max entries holding testKey(0) to testKey(n-1),
// inserted at now, entry i with timeout(i).
func tableOf(t *testing.T, max, n int, now int64, timeout func(i int) time.Duration) *Table {
	t.Helper()
	tb, err := New(Options{Max: max})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k := testKey(i)
		e, err := tb.Insert(&k, now)
		if err != nil {
			t.Fatal(err)
		}
		tb.SetTimeout(e, now, timeout(i))
	}
	return tb
}

// TestRangeSlotsChunkBoundaryShift: a walk in chunks (sync's bulk answer,
// the connection listing: the lock released between chunks) yields a
// live entry that a deletion between two chunks shifts back across the
// cursor. With chunks of a fixed size, the entry at a chunk's first slot
// whose home is before it moved into the previous chunk's last slot when
// that slot's entry ended, and was never yielded: a bulk copy lacked it.
func TestRangeSlotsChunkBoundaryShift(t *testing.T) {
	tb, err := New(Options{Max: 4096, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; i < 3500; i++ {
		k := Key{CPort: uint16(i), VPort: 80, Proto: 6}
		k.CIP[15] = byte(i >> 8)
		e, err := tb.Insert(&k, now)
		if err != nil {
			t.Fatal(err)
		}
		tb.SetTimeout(e, now, time.Hour)
	}
	// A boundary c (a multiple of 256) with c-1 occupied and slot c
	// holding an entry whose home is before c.
	for c := 256; c < len(tb.slots); c += 256 {
		if tb.slots[c-1].expires == expEmpty || tb.slots[c].expires == expEmpty {
			continue
		}
		if h := tb.home(hashKey(&tb.slots[c].Key, tb.seed)); h > c-1 {
			continue
		}
		victim := tb.slots[c].Key
		seen := false
		yield := func(e *Entry) {
			if e.Key == victim {
				seen = true
			}
		}
		cur := tb.RangeSlots(0, c, yield)
		// Between chunks: the entry at c-1 ends (expiry, FIN timeout,
		// Delete).
		k := tb.slots[c-1].Key
		tb.Delete(tb.Lookup(&k, now))
		for cur >= 0 {
			cur = tb.RangeSlots(cur, 256, yield)
		}
		if tb.Lookup(&victim, now) == nil {
			t.Fatal("victim gone")
		}
		if !seen {
			t.Fatalf("live entry (slot %d at the walk's chunk boundary) never yielded: a bulk copy misses it", c)
		}
		return
	}
	t.Fatal("no chunk boundary inside a probe run: the test proves nothing")
}

// TestRangeSlotsChunksUnderChurn: whatever is inserted and deleted
// between chunks, a chunked walk yields every entry present from its
// start to its end (at a high load: long runs, many crossing chunk
// boundaries), and each chunk ends after an empty slot.
func TestRangeSlotsChunksUnderChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 50 {
		tb, err := New(Options{Max: 3000, Seed: uint64(round)})
		if err != nil {
			t.Fatal(err)
		}
		keyOf := func(i int) Key {
			k := Key{CPort: uint16(i), VPort: 80, Proto: 6}
			k.CIP[14], k.CIP[15] = byte(round), byte(i>>16)
			k.VIP[15] = byte(i >> 8)
			return k
		}
		var keys []Key
		next := 0
		insert := func() {
			k := keyOf(next)
			next++
			if e, err := tb.Insert(&k, t0); err == nil {
				tb.SetTimeout(e, t0, time.Hour)
				keys = append(keys, k)
			}
		}
		for range 2900 {
			insert()
		}
		// stay: entries no deletion touches during the walk.
		stay := map[Key]bool{}
		for _, k := range keys {
			if rng.IntN(2) == 0 {
				stay[k] = true
			}
		}
		seen := map[Key]bool{}
		chunk := 1 + rng.IntN(64)
		for cur := 0; cur >= 0; {
			cur = tb.RangeSlots(cur, chunk, func(e *Entry) { seen[e.Key] = true })
			if cur > 0 && tb.slots[cur-1].expires != expEmpty {
				t.Fatalf("round %d: a chunk ended at slot %d after an occupied slot", round, cur)
			}
			for range rng.IntN(8) {
				i := rng.IntN(len(keys))
				if k := keys[i]; !stay[k] {
					tb.Delete(tb.Lookup(&k, t0))
					keys[i] = keys[len(keys)-1]
					keys = keys[:len(keys)-1]
				}
				insert()
			}
		}
		for k := range stay {
			if !seen[k] {
				t.Fatalf("round %d (chunks of %d): an entry present throughout the walk was never yielded", round, chunk)
			}
		}
	}
}
