package testbed

import (
	"slices"
	"testing"

	"github.com/vishvananda/netns"
)

// TestCloseAllOnSignal: SIGTERM (or Ctrl-C) closes every lab this process
// has open, which the killed test binary's t.Cleanup functions no longer
// would, and the program still hears the signal. Needs no root: the lab
// is only planned, no namespace is made.
func TestCloseAllOnSignal(t *testing.T) {
	o, err := Options{RealServers: 1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	l := plan(o)
	for _, h := range l.allHosts() {
		h.NS = netns.None() // as build starts: nothing open
	}
	track(l)
	t.Cleanup(func() { l.Close() })
	signalClosesLab(t, l, CloseAllOnSignal)
	if slices.Contains(openLabs(), l) {
		t.Error("a closed lab is still listed as open")
	}
}
