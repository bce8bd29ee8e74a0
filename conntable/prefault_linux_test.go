package conntable

import (
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPrefaultMakesResident: every page of a large table's slot array
// (the partial last one included), dropped first (MADV_DONTNEED: not
// resident, read back as zero) and kept off huge pages so that each page
// counts alone, is resident after Prefault, and after the page-by-page
// fallback alone, and the entries are kept. (Reading the array would map
// its pages too: TestPrefaultChangesNothing compares the bytes.)
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
			pages := coveringPages(tb.slots)
			all := len(pages) / os.Getpagesize()
			if err := unix.Madvise(pages, unix.MADV_NOHUGEPAGE); err != nil {
				t.Fatal(err)
			}
			if err := unix.Madvise(pages, unix.MADV_DONTNEED); err != nil {
				t.Fatal(err)
			}
			// A few entries: each faults its page in, and most of the
			// array must stay out for the test to tell.
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
			if r := resident(t, pages); r > all/2 {
				t.Fatalf("%d of %d pages resident before %s: the test cannot tell", r, all, c.name)
			}
			if err := c.fault(tb); err != nil {
				t.Logf("%s: %v (fell back to touching pages)", c.name, err)
			}
			if r := resident(t, pages); r != all {
				t.Errorf("%d of %d pages resident after %s", r, all, c.name)
			}
			for i := range keys {
				if e := tb.Lookup(&keys[i], t0); e == nil || e.Real != uint16(i) {
					t.Fatalf("entry %d lost or changed: %+v", i, e)
				}
			}
		})
	}
}

// coveringPages is the pages slots lies in, the partial last one
// included (a large slot array starts on a huge page, and the allocation
// runs on past its end: allocSlots).
func coveringPages(slots []Entry) []byte {
	b := slotBytes(slots)
	page := os.Getpagesize()
	if uintptr(unsafe.Pointer(&b[0]))%uintptr(page) != 0 {
		panic("slot array not page-aligned")
	}
	return unsafe.Slice(&b[0], (len(b)+page-1)&^(page-1))
}

// resident counts the pages of b (page-aligned) in memory (mincore).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (len(b)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
