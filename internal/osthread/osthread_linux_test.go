package osthread

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRunNeverOnMainThread: even when the caller is locked to the main
// thread (so the scheduler would happily reuse it), fn runs elsewhere.
func TestRunNeverOnMainThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for range 20 {
		var tid int
		Run(func() { tid = unix.Gettid() })
		if tid == unix.Getpid() {
			t.Fatal("fn ran on the main thread")
		}
	}
}
