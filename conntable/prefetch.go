package conntable

import (
	"unsafe"

	"github.com/drlb/drlb/internal/prefetch"
)

// PrefetchKey starts loading the home slot of k and the slot after it
// (the lines of 96 bytes: two or three, as 48-byte slots straddle lines)
// into the CPU cache and returns at once, without waiting for memory. It changes nothing in the table and its result does
// not depend on what it finds: calling it or not gives the same lookups.
//
// At a million connections a Lookup is one random memory access, 220-390
// ns on the 2-core VM (a page walk and a cache miss). A caller
// that handles a batch of packets calls PrefetchKey for every packet of
// the batch first, in a loop of its own, then looks them up: the misses
// and walks overlap each other and the work (forwarder.Prefetch says
// why all at once rather than a few places ahead; see package prefetch
// for why a plain load does not do this: it holds the CPU until memory
// answers).
func (t *Table) PrefetchKey(k *Key) { t.PrefetchHash(hashKey(k, t.seed)) }

// PrefetchHash is PrefetchKey for the key whose hash is h (t.Hash).
func (t *Table) PrefetchHash(h uint64) {
	if len(t.slots) == 0 {
		return
	}
	p := uintptr(unsafe.Pointer(&t.slots[t.home(h)]))
	// The home slot and the next (a probe's usual run), in one call:
	// three calls to Line measured 108-160 ns per packet at 1M against
	// 102-139 (12 alternated runs, medians 119 and 113).
	prefetch.Span(p, 2*unsafe.Sizeof(Entry{}))
}
