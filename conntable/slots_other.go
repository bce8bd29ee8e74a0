//go:build !linux

package conntable

import "errors"

// allocSlots returns a zeroed slot array of n entries. Only Linux puts
// large ones on huge pages (slots_linux.go).
func allocSlots(n int) []Entry { return make([]Entry, n) }

// populate reports that no bulk request exists here: Prefault touches
// the pages itself.
func populate([]Entry) error { return errNoPopulate }

var errNoPopulate = errors.New("conntable: no MADV_POPULATE_WRITE on this system")
