package conntable

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of an x86-64 (and arm64 4K-granule) transparent
// huge page.
const hugePage = 2 << 20

// hugeMin is the smallest slot array put on huge pages: below it the
// array fits the TLB's reach with 4 KiB pages anyway.
const hugeMin = 16 << 20

// allocSlots returns a zeroed slot array of n entries. A large one starts
// on a huge-page boundary and is advised onto transparent huge pages
// (MADV_HUGEPAGE; /sys/kernel/mm/transparent_hugepage/enabled is usually
// "madvise", and the Go heap does not ask for them itself). At a million
// connections every lookup lands on a random 4 KiB page of a 64 MiB
// array, far beyond what the TLB maps, so each one also paid a page walk
// (nested, in a VM) and the walks, not the cache misses, limited how many
// prefetched lookups overlapped; 2 MiB pages bring the whole array within
// the TLB's reach. If the kernel says no, the array works as it is.
//
// The memory is an ordinary Go allocation (pointer-free, so the garbage
// collector does not scan it) with room to align: the GC frees it with
// the Table, so tables need no Close and tests that build many leak
// nothing.
func allocSlots(n int) []Entry {
	const size = int(unsafe.Sizeof(Entry{}))
	bytes := n * size
	if bytes < hugeMin {
		return make([]Entry, n)
	}
	span := (bytes + hugePage - 1) &^ (hugePage - 1)
	buf := make([]byte, span+hugePage)
	off := int(-uintptr(unsafe.Pointer(&buf[0])) & (hugePage - 1))
	_ = unix.Madvise(buf[off:off+span], unix.MADV_HUGEPAGE)
	return unsafe.Slice((*Entry)(unsafe.Pointer(&buf[off])), n)
}

// populate asks the kernel to fault in the whole pages of slots writable
// (MADV_POPULATE_WRITE, which preserves their contents). The partial
// pages at either end, which it leaves out, are Prefault's to touch.
func populate(slots []Entry) error {
	pages := wholePages(slotBytes(slots))
	if len(pages) == 0 {
		return nil // less than a page, within pages the heap already uses
	}
	if err := unix.Madvise(pages, unix.MADV_POPULATE_WRITE); err != nil {
		return fmt.Errorf("conntable: madvise MADV_POPULATE_WRITE: %w", err)
	}
	return nil
}
