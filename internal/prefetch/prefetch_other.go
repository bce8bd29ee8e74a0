//go:build !amd64 && !arm64

package prefetch

// Line does nothing on this architecture (no prefetch instruction is
// wired up); see the amd64 and arm64 versions.
func Line(addr uintptr) {}

// Span does nothing on this architecture, as Line.
func Span(addr, n uintptr) {}
