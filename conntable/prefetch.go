package conntable

// PrefetchBatch is the most keys one Prefetch call loads; longer slices are
// taken in chunks of this size.
const PrefetchBatch = 64

// Prefetch brings the home slot of every key into the CPU cache, so that
// the Lookups that follow hit cache instead of waiting for memory one after
// the other. It changes nothing in the table and its result does not
// depend on what it finds: calling it or not gives the same lookups.
//
// At a million connections a Lookup is one random memory access; a batch
// of them in a row waits for each miss in turn. Prefetch first hashes every
// key (no memory access), then reads each home slot in a tight loop of
// independent loads, which the CPU keeps in flight together, so a batch
// pays about one memory latency instead of one per key. Go has no portable
// prefetch instruction; a plain load whose value is kept (in t.sink) does
// the same on an out-of-order CPU. Both ends of the home slot and the end
// of the next one are read: half the 48-byte slots straddle two 64-byte
// cache lines, and a probe run often goes on into the next slot.
func (t *Table) Prefetch(keys []Key) {
	if len(t.slots) == 0 {
		return
	}
	var home [PrefetchBatch]int32
	sink := t.sink
	for len(keys) > 0 {
		n := min(len(keys), PrefetchBatch)
		for i := range n {
			home[i] = int32(t.home(hashKey(&keys[i], t.seed)))
		}
		last := int32(len(t.slots) - 1)
		for _, h := range home[:n] {
			e := &t.slots[h]
			sink += e.expires + uint32(e.Key.CIP[0]) + t.slots[min(h+1, last)].expires
		}
		keys = keys[n:]
	}
	t.sink = sink
}
