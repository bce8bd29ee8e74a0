package conntable

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePageSize is the x86-64 / arm64 transparent huge page size.
const hugePageSize = 2 << 20

// adviseHugePages asks the kernel to back the slot array with transparent
// huge pages. Lookups land on random slots of a table that is tens of MB, so
// with 4 KiB pages nearly every one also misses the TLB (and under a
// hypervisor pays a two-level page walk); 2 MiB pages cover the table with a
// few hundred TLB entries. Best effort: on kernels with THP off or "always"
// it changes nothing, and errors are ignored.
func adviseHugePages(slots []Entry) {
	n := uintptr(len(slots)) * unsafe.Sizeof(Entry{})
	if n < 2*hugePageSize {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(slots)))
	// madvise wants a page-aligned start; only whole huge pages inside the
	// array matter, so round inward to them.
	start := (p + hugePageSize - 1) &^ (hugePageSize - 1)
	end := (p + n) &^ (hugePageSize - 1)
	if end <= start {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(slots)), start-p)), end-start)
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
}
