//go:build !linux

package osthread

// Run runs fn and returns: only Linux has per-thread namespaces.
func Run(fn func()) { fn() }
