package testutil

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// onSpareThread runs fn on an OS thread of its own that is thrown away
// afterwards, so that whatever fn does to its thread (enter a namespace,
// drop a capability) never reaches other goroutines.
//
// The thread is never the main one. Go cannot end the main thread when its
// locked goroutine exits: it parks it for good, still in whatever namespace
// fn left it in, and the process's /proc/<pid>/ns/net shows that namespace
// from then on. Tools that find a namespace's processes that way (drlb lab
// down among them) would take the test binary for one of them.
func onSpareThread(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: keep it busy waiting, so the Go
			// scheduler puts fn's goroutine on another thread, then
			// give it back untouched.
			onSpareThread(fn)
			runtime.UnlockOSThread()
			return
		}
		fn() // never unlocked: the thread exits with this goroutine
	}()
	<-done
}
