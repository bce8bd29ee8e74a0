package prefetch_test

import (
	"testing"
	"unsafe"

	"github.com/drlb/drlb/internal/prefetch"
)

// TestLineChangesNothing: prefetching any address, inside a slice, far
// past its end or 0, neither faults nor changes memory, and allocates
// nothing.
func TestLineChangesNothing(t *testing.T) {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	base := uintptr(unsafe.Pointer(&b[0]))
	for i := range b {
		prefetch.Line(base + uintptr(i))
	}
	prefetch.Line(base + 1<<40)
	prefetch.Line(0)
	for i := range b {
		if b[i] != byte(i) {
			t.Fatalf("b[%d] = %d after prefetch, want %d", i, b[i], i)
		}
	}
	if a := testing.AllocsPerRun(100, func() { prefetch.Line(base) }); a != 0 {
		t.Fatalf("Line: %v allocs/op, want 0", a)
	}
}

// TestSpanChangesNothing is TestLineChangesNothing for Span: any range,
// empty, unaligned, past the end, at 0 or ending at the top of the
// address space.
func TestSpanChangesNothing(t *testing.T) {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	base := uintptr(unsafe.Pointer(&b[0]))
	for off := range uintptr(130) {
		for _, n := range []uintptr{0, 1, 47, 48, 63, 64, 65, 96, 200} {
			prefetch.Span(base+off, n)
		}
	}
	prefetch.Span(base+1<<40, 96)
	prefetch.Span(0, 96)
	prefetch.Span(^uintptr(0)-95, 96) // the last line of the address space: the loop must end
	for i := range b {
		if b[i] != byte(i) {
			t.Fatalf("b[%d] = %d after prefetch, want %d", i, b[i], i)
		}
	}
	if a := testing.AllocsPerRun(100, func() { prefetch.Span(base, 96) }); a != 0 {
		t.Fatalf("Span: %v allocs/op, want 0", a)
	}
}
