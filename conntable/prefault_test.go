package conntable

import (
	"bytes"
	"testing"
	"time"
)

// TestPrefaultChangesNothing: Prefault and its page-by-page fallback
// leave every byte of a table in use as it was, in a large table (huge
// pages, madvise) and a small one (an ordinary allocation).
func TestPrefaultChangesNothing(t *testing.T) {
	for _, max := range []int{1 << 19, 1000} {
		tb, err := New(Options{Max: max})
		if err != nil {
			t.Fatal(err)
		}
		for i := range max / 2 {
			k := testKey(i)
			e, err := tb.Insert(&k, t0)
			if err != nil {
				t.Fatal(err)
			}
			tb.SetTimeout(e, t0, time.Hour)
			e.Real, e.State, e.Flags = uint16(i), uint8(i), uint8(i>>8)
		}
		before := bytes.Clone(slotBytes(tb.slots))
		if err := tb.Prefault(); err != nil {
			t.Logf("max %d: Prefault: %v (fell back to touching pages)", max, err)
		}
		touchPages(tb.slots)
		if !bytes.Equal(before, slotBytes(tb.slots)) {
			t.Errorf("max %d: Prefault changed the slot array", max)
		}
	}
}
