//go:build !linux

package conntable

// allocSlots returns a zeroed slot array of n entries. Only Linux puts
// large ones on huge pages (slots_linux.go).
func allocSlots(n int) []Entry { return make([]Entry, n) }
