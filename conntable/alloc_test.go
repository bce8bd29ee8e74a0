package conntable

import (
	"testing"
	"time"
)

// TestZeroAllocs proves the hot-path calls allocate nothing, with an
// OnExpire callback installed and entries expiring along the way.
func TestZeroAllocs(t *testing.T) {
	expired := 0
	tb, err := New(Options{Max: 1000, OnExpire: func(*Entry) { expired++ }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		k := testKey(i)
		e, _ := tb.Insert(&k, t0)
		tb.SetTimeout(e, t0, time.Duration(i%10)*time.Second)
	}
	now := t0
	i := 0
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Lookup", func() {
			k := testKey(i % 700)
			tb.Lookup(&k, now)
			i++
		}},
		{"Insert+SetTimeout+Delete", func() {
			k := testKey(1000 + i%100)
			if e, err := tb.Insert(&k, now); err == nil {
				tb.SetTimeout(e, now, time.Second)
				tb.Delete(e)
			}
			i++
		}},
		{"Insert+SetTimeout expiring", func() {
			k := testKey(2000 + i)
			if e, err := tb.Insert(&k, now); err == nil {
				tb.SetTimeout(e, now, 3*time.Second)
			}
			now += int64(time.Second) / 4
			i++
		}},
		{"Sweep", func() {
			tb.Sweep(now, 16)
			now += int64(time.Second)
		}},
	} {
		if a := testing.AllocsPerRun(1000, tc.fn); a != 0 {
			t.Errorf("%s: %v allocs/op, want 0", tc.name, a)
		}
	}
	if expired == 0 {
		t.Error("nothing expired: the test did not exercise removal")
	}
}

// TestPrefetchNoEffect: PrefetchKey allocates nothing and leaves every slot
// as it was, keys present or absent, and does nothing on a zero Table.
func TestPrefetchNoEffect(t *testing.T) {
	tb, err := New(Options{Max: 1000})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]Key, 200)
	for i := range keys {
		keys[i] = testKey(i)
		if i%2 == 0 {
			e, _ := tb.Insert(&keys[i], t0)
			tb.SetTimeout(e, t0, time.Second)
		}
	}
	before := append([]Entry(nil), tb.slots...)
	prefetchAll := func(tb *Table) {
		for i := range keys {
			tb.PrefetchKey(&keys[i])
		}
	}
	if a := testing.AllocsPerRun(100, func() { prefetchAll(tb) }); a != 0 {
		t.Fatalf("PrefetchKey: %v allocs/op, want 0", a)
	}
	for i := range before {
		if before[i] != tb.slots[i] {
			t.Fatalf("slot %d changed", i)
		}
	}
	var zero Table
	prefetchAll(&zero) // no slots: nothing to load, no panic
}
