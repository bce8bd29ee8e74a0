package conntable

import (
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPrefaultMakesResident: a large table's pages, dropped first
// (MADV_DONTNEED: not resident, read back as zero), are all resident after
// Prefault, and after the page-by-page fallback alone; every entry is
// kept through both.
func TestPrefaultMakesResident(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault func(*Table) error
	}{
		{"Prefault", (*Table).Prefault},
		{"touchPages", func(tb *Table) error { touchPages(tb.slots); return nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb, err := New(Options{Max: 1 << 19}) // 32 MiB of slots: the huge-page path
			if err != nil {
				t.Fatal(err)
			}
			pages := wholePages(slotBytes(tb.slots))
			if err := unix.Madvise(pages, unix.MADV_DONTNEED); err != nil {
				t.Fatal(err)
			}
			// A few entries: each faults in its page, or its 2 MiB
			// huge page, and most of the array must stay out for the
			// test to tell.
			keys := make([]Key, 4)
			for i := range keys {
				keys[i] = testKey(i)
				e, err := tb.Insert(&keys[i], t0)
				if err != nil {
					t.Fatal(err)
				}
				tb.SetTimeout(e, t0, time.Hour)
				e.Real = uint16(i)
			}
			if r := resident(t, pages); r > len(pages)/pageSize/2 {
				t.Fatalf("%d of %d pages resident before %s: the test cannot tell", r, len(pages)/pageSize, c.name)
			}
			if err := c.fault(tb); err != nil {
				t.Logf("%s: %v (fell back to touching pages)", c.name, err)
			}
			if r, all := resident(t, pages), len(pages)/pageSize; r != all {
				t.Errorf("%d of %d pages resident after %s", r, all, c.name)
			}
			for i := range keys {
				e := tb.Lookup(&keys[i], t0)
				if e == nil || e.Real != uint16(i) {
					t.Fatalf("entry %d lost or changed: %+v", i, e)
				}
			}
			if tb.Len() != len(keys) {
				t.Errorf("Len %d, want %d", tb.Len(), len(keys))
			}
		})
	}
}

// resident counts the pages of b (page-aligned) in memory (mincore).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, len(b)/pageSize)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
