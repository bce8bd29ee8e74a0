//go:build amd64 || arm64

package prefetch

// Line starts loading the cache line that holds the byte at addr into the
// CPU's caches and returns at once. addr may be any value: a prefetch never
// faults, and a uintptr, unlike a pointer, means nothing to the garbage
// collector. It changes nothing a program can observe except timing.
//
//go:noescape
func Line(addr uintptr)

// Span starts loading every cache line that holds a byte of the n bytes
// from addr (none when n is 0), as Line does for each, in one call: the
// connection table's slots straddle lines. Like Line it never faults;
// the range must not wrap past the top of the address space.
//
//go:noescape
func Span(addr, n uintptr)
