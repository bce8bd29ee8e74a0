package conntable

import (
	"unsafe"

	"github.com/drlb/drlb/internal/prefetch"
)

// PrefetchKey starts loading the home slot of k (both cache lines a
// 48-byte slot may span) into the CPU cache and returns at once, without
// waiting for memory. It changes nothing in the table and its result does
// not depend on what it finds: calling it or not gives the same lookups.
//
// At a million connections a Lookup is one random memory access, about
// 220 ns on the 2-core VM (a page walk and a cache miss; the CPU keeps only
// a few such walks in flight). A caller that handles a batch of packets
// calls PrefetchKey for the packet a few places ahead of the one it
// processes, so that each miss is on its way while the CPU works on the
// packets before it (see package prefetch for why a plain load does not
// do this). Prefetching a whole batch at once, as an earlier version did
// with plain loads, overlaps the misses with each other but not with the
// work: measured in BenchmarkLookupBatch.
func (t *Table) PrefetchKey(k *Key) {
	if len(t.slots) == 0 {
		return
	}
	p := uintptr(unsafe.Pointer(&t.slots[t.home(hashKey(k, t.seed))]))
	prefetch.Line(p)
	prefetch.Line(p + unsafe.Sizeof(Entry{}) - 1)
	prefetch.Line(p + 2*unsafe.Sizeof(Entry{}) - 1)
}
