package conntable

import (
	"errors"
	"testing"
	"time"
)

// TestEvict fills a table with evictable entries (Service 1) and a few it
// must keep (Service 2): new keys get in by evicting only the former,
// counted, OnExpire called for each; once only kept entries are left,
// Insert fails with ErrFull.
func TestEvict(t *testing.T) {
	const max = 1000
	gone := map[Key]int{}
	tb, err := New(Options{Max: max, OnExpire: func(e *Entry) {
		if e.Service != 1 {
			t.Errorf("entry %v of service %d left the table", e.Key, e.Service)
		}
		gone[e.Key]++
	}, Evictable: func(e *Entry) bool { return e.Service == 1 }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range max {
		k := testKey(i)
		e, err := tb.Insert(&k, t0)
		if err != nil {
			t.Fatal(err)
		}
		tb.SetTimeout(e, t0, time.Hour)
		e.Service = 1
		if i%10 == 0 {
			e.Service = 2
		}
	}
	// Evictable entries are found near the hand: every insert succeeds
	// until the kept entries are all that is left (give or take the
	// hand's window), then ErrFull.
	inserted, full := 0, 0
	for i := max; i < 4*max; i++ {
		k := testKey(i)
		e, err := tb.Insert(&k, t0)
		if errors.Is(err, ErrFull) {
			full++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		tb.SetTimeout(e, t0, time.Hour)
		e.Service = 2
		inserted++
		if err := tb.check(); err != nil {
			t.Fatal(err)
		}
	}
	if inserted != max-max/10 || tb.Evicted() != uint64(inserted) || len(gone) != inserted || tb.Len() != max {
		t.Fatalf("inserted %d, Evicted %d, OnExpire %d, Len %d; want %d, %d, %d, %d",
			inserted, tb.Evicted(), len(gone), tb.Len(), max-max/10, max-max/10, max-max/10, max)
	}
	for k, n := range gone {
		if n != 1 {
			t.Errorf("OnExpire %d times for %v", n, k)
		}
	}
	if full != 3*max-inserted {
		t.Errorf("%d ErrFull, want %d", full, 3*max-inserted)
	}
}

// TestEvictOldestFirst: among the entries the hand examines, the one that
// expires first goes, so entries refreshed later outlive older ones.
func TestEvictOldestFirst(t *testing.T) {
	const max = 3000
	tb, err := New(Options{Max: max, Evictable: func(e *Entry) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	// Old entries (expiring in 10 s) and young ones (20 s), interleaved.
	for i := range max {
		k := testKey(i)
		e, _ := tb.Insert(&k, t0)
		tb.SetTimeout(e, t0, time.Duration(10+10*(i%2))*time.Second)
	}
	// A fifth of the table turns over: only old entries should go.
	for i := range max / 5 {
		k := testKey(max + i)
		e, err := tb.Insert(&k, t0)
		if err != nil {
			t.Fatal(err)
		}
		tb.SetTimeout(e, t0, 30*time.Second)
	}
	young := 0
	tb.Range(func(e *Entry) bool {
		if tb.Expires(e) == t0+20*int64(time.Second) {
			young++
		}
		return true
	})
	if young != max/2 {
		t.Fatalf("%d of %d young entries left, want all", young, max/2)
	}
}

// TestEvictNone: a full table of entries Evictable refuses costs a
// bounded scan per refused Insert, and nothing is evicted.
func TestEvictNone(t *testing.T) {
	calls := 0
	tb, _ := New(Options{Max: 100, Evictable: func(e *Entry) bool { calls++; return false }})
	for i := range 100 {
		k := testKey(i)
		e, _ := tb.Insert(&k, t0)
		tb.SetTimeout(e, t0, time.Hour)
	}
	for i := range 50 {
		k := testKey(100 + i)
		if _, err := tb.Insert(&k, t0); !errors.Is(err, ErrFull) {
			t.Fatalf("Insert into a full table: %v", err)
		}
	}
	if tb.Evicted() != 0 || tb.Len() != 100 || calls > 50*evictScanMax {
		t.Fatalf("Evicted %d, Len %d, %d Evictable calls (at most %d)", tb.Evicted(), tb.Len(), calls, 50*evictScanMax)
	}
}

// TestEvictZeroAllocs: inserting into a full table by eviction allocates
// nothing.
func TestEvictZeroAllocs(t *testing.T) {
	tb, _ := New(Options{Max: 1000, Evictable: func(e *Entry) bool { return e.Service == 0 }})
	i := 0
	insert := func() {
		k := testKey(i)
		if e, err := tb.Insert(&k, t0); err == nil {
			tb.SetTimeout(e, t0, time.Hour)
		}
		i++
	}
	for range 1000 {
		insert()
	}
	if a := testing.AllocsPerRun(1000, insert); a != 0 {
		t.Errorf("%v allocs per Insert, want 0", a)
	}
	if tb.Evicted() < 1000 {
		t.Errorf("Evicted %d, want at least 1000", tb.Evicted())
	}
}
