package prefetch_test

import (
	"fmt"
	"math/bits"
	"testing"
	"unsafe"

	"github.com/drlb/drlb/internal/prefetch"
	"golang.org/x/sys/unix"
)

// BenchmarkMemoryFloor is what the host charges for the connection
// table's access pattern, without the table: keys of two cache lines each
// (a 48-byte slot may straddle two), at random over an array of 1 MiB
// (the caches) or 128 MiB (1M connections' table, on huge pages as
// conntable puts it), in batches of 64 as the director's step runs them.
//
//   - loads: the two lines of every key, loaded independently, no work:
//     how many misses the host overlaps (its memory throughput per key);
//   - work: a chain of 60 dependent multiplies (~80 ns) per key, then
//     its loads, nothing prefetched;
//   - work+batch: the same with the whole batch's lines prefetched first
//     (forwarder.Prefetch's way);
//   - work+ahead16: prefetching 16 keys ahead of the work instead, the
//     last 16 of a batch prefetching the next batch's first (a pipeline
//     across batches, which the director's step does not have: it
//     learns a batch's frames only when it reads them).
//
// ns/key at 128 MiB less that at 1 MiB is what memory adds to each
// packet's work on the day's host, whatever the pipeline does: issue 14's
// 1M-flow figure cannot be lower than the work plus that.
//
//	go test -run '^$' -bench MemoryFloor ./internal/prefetch/
func BenchmarkMemoryFloor(b *testing.B) {
	for _, mib := range []int{1, 128} {
		words := hugeWords(b, mib<<20)
		slots := uint64(len(words) / 6) // 48-byte slots of 6 words
		for _, mode := range []string{"loads", "work", "work+batch", "work+ahead16"} {
			b.Run(fmt.Sprintf("%dMiB/%s", mib, mode), func(b *testing.B) {
				// cur is the batch being worked on, next the one after it
				// (known early, as a ring shows the frames behind a batch).
				var cur, next [64]uint64
				x := uint64(0x9e3779b97f4a7c15)
				fill := func(idx *[64]uint64) {
					for i := range idx {
						x ^= x << 13
						x ^= x >> 7
						x ^= x << 17
						hi, _ := bits.Mul64(x, slots)
						idx[i] = hi * 6
					}
				}
				fill(&next)
				sum, keys := uint64(0), 0
				for b.Loop() {
					cur = next
					fill(&next)
					if mode == "work+batch" {
						for _, j := range cur {
							prefetchSlot(&words[j])
						}
					}
					for i, j := range cur {
						if mode == "work+ahead16" {
							k := next[(i+16)%64]
							if i+16 < len(cur) {
								k = cur[i+16]
							}
							prefetchSlot(&words[k])
						}
						w := sum
						if mode != "loads" {
							for r := range 60 {
								w = w*0x9e3779b97f4a7c15 + uint64(r)
							}
						}
						sum = w + words[j] + words[j+5]
					}
					keys += len(cur)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(keys), "ns/key")
				sink = sum
			})
		}
	}
}

// sink keeps the loads' sum alive.
var sink uint64

// prefetchSlot prefetches the two lines a 48-byte slot at p may span.
func prefetchSlot(p *uint64) {
	a := uintptr(unsafe.Pointer(p))
	prefetch.Line(a)
	prefetch.Line(a + 47)
}

// hugeWords is a zeroed array of size bytes on a 2 MiB boundary, advised
// onto transparent huge pages and touched, as conntable's slot arrays
// are once the director has faulted them in.
func hugeWords(b *testing.B, size int) []uint64 {
	const huge = 2 << 20
	buf := make([]byte, size+huge)
	off := int(-uintptr(unsafe.Pointer(&buf[0])) & (huge - 1))
	_ = unix.Madvise(buf[off:off+size], unix.MADV_HUGEPAGE)
	words := unsafe.Slice((*uint64)(unsafe.Pointer(&buf[off])), size/8)
	for i := range words {
		words[i] = uint64(i)
	}
	return words
}
