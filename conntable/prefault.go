package conntable

import (
	"os"
	"sync/atomic"
	"unsafe"
)

// Prefault has the kernel back every page of the slot array now, instead
// of on the first lookup or insert that lands on it. A table's memory is
// an anonymous mapping the kernel fills in on first touch: zeroing a
// 2 MiB huge page (and, with the usual transparent_hugepage defrag
// "madvise", compacting memory to find one) per fault. A director with
// the default max_conns (64 MiB of slots) touches most of them with its
// first few hundred connections, and its first batch of new clients
// took 100-230 ms on the 2-core lab VM (ARCHITECTURE.md, "Performance"):
// long enough to overflow an AF_XDP receive ring at 30k frames/s.
// Prefault moves that cost to start-up.
//
// It keeps every entry as it is, so it may run on a table in use, but not
// concurrently with the goroutine that drives it. An error means the
// kernel refused the bulk request (MADV_POPULATE_WRITE, Linux 5.14) and
// the pages were touched one by one instead, which only costs time; it is
// returned for the caller to log.
func (t *Table) Prefault() error {
	if len(t.slots) == 0 {
		return nil
	}
	err := populate(t.slots)
	if err != nil {
		touchPages(t.slots)
		return err
	}
	touchEnds(t.slots) // the partial pages populate leaves out
	return nil
}

// touchPages writes to every page of slots without changing it: an
// atomic add of 0 to one 32-bit word per page (a write fault maps a
// private page; a read would map the shared zero page, to be replaced
// by a write fault later), and to the last word.
func touchPages(slots []Entry) {
	words := slotWords(slots)
	for i := 0; i < len(words); i += os.Getpagesize() / 4 {
		atomic.AddUint32(&words[i], 0)
	}
	atomic.AddUint32(&words[len(words)-1], 0)
}

// touchEnds is touchPages for the first and last words only.
func touchEnds(slots []Entry) {
	words := slotWords(slots)
	atomic.AddUint32(&words[0], 0)
	atomic.AddUint32(&words[len(words)-1], 0)
}

// slotBytes is the memory of slots, as bytes.
func slotBytes(slots []Entry) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&slots[0])), len(slots)*int(unsafe.Sizeof(Entry{})))
}

// slotWords is the memory of slots as 32-bit words (an Entry is 48 bytes,
// 4-aligned).
func slotWords(slots []Entry) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(&slots[0])), len(slots)*int(unsafe.Sizeof(Entry{}))/4)
}

// wholePages is the part of b that is whole pages of the kernel's page
// size (4 KiB on x86-64, up to 64 KiB on arm64 and ppc64le kernels);
// empty if none is.
func wholePages(b []byte) []byte {
	page := os.Getpagesize()
	lo := int(-uintptr(unsafe.Pointer(&b[0])) & uintptr(page-1))
	if lo >= len(b) {
		return nil
	}
	return b[lo : lo+(len(b)-lo)&^(page-1)]
}
