//go:build amd64 || arm64

package prefetch

// Line starts loading the cache line that holds the byte at addr into the
// CPU's caches and returns at once. addr may be any value: a prefetch never
// faults, and a uintptr, unlike a pointer, means nothing to the garbage
// collector. It changes nothing a program can observe except timing.
//
//go:noescape
func Line(addr uintptr)
