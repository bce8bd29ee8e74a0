package conntable

import (
	"testing"
	"time"
	"unsafe"
)

// TestLargeSlotsAligned checks that a large slot array starts on a huge
// page, is zeroed and usable to its last slot; a small one is left as
// make() gives it.
func TestLargeSlotsAligned(t *testing.T) {
	tb, err := New(Options{Max: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if n := tb.Slots() * int(unsafe.Sizeof(Entry{})); n < hugeMin {
		t.Fatalf("%d bytes of slots, want a table of at least %d", n, hugeMin)
	}
	if p := uintptr(unsafe.Pointer(&tb.slots[0])); p%hugePage != 0 {
		t.Errorf("slot array at %#x, not on a %d-byte boundary", p, hugePage)
	}
	if len(tb.slots) != cap(tb.slots) || len(tb.slots) != slotCount(1<<20) {
		t.Errorf("len %d cap %d, want %d", len(tb.slots), cap(tb.slots), slotCount(1<<20))
	}
	for i := range tb.slots {
		if tb.slots[i] != (Entry{}) {
			t.Fatalf("slot %d not zero", i)
		}
	}
	last := &tb.slots[len(tb.slots)-1]
	last.Key.Proto = 6
	last.expires = expirySeconds(t0, time.Second)
	var seen []*Entry
	tb.Range(func(e *Entry) bool { seen = append(seen, e); return true })
	if len(seen) != 1 || seen[0] != last || tb.index(last) != len(tb.slots)-1 {
		t.Errorf("last slot not usable: Range saw %d entries", len(seen))
	}
	small := allocSlots(100)
	if len(small) != 100 || cap(small) != 100 {
		t.Errorf("small array: len %d cap %d", len(small), cap(small))
	}
}
