package testbed

import (
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"

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
	// Our own handler stands in for the default action, so the re-raised
	// signal does not kill the test binary.
	mine := make(chan os.Signal, 4)
	signal.Notify(mine, syscall.SIGTERM)
	defer signal.Stop(mine)
	stop := CloseAllOnSignal()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l.mu.RLock()
		closed := l.closed
		l.mu.RUnlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lab not closed 10s after SIGTERM")
		}
	}
	if slices.Contains(openLabs(), l) {
		t.Error("a closed lab is still listed as open")
	}
	for i := range 2 { // once directly, once re-raised
		select {
		case <-mine:
		case <-time.After(10 * time.Second):
			t.Fatalf("signal %d never reached the program's handler", i+1)
		}
	}
}
