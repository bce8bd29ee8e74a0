package osthread

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Run runs fn on an OS thread of its own, locked to fn's goroutine and
// thrown away afterwards (never unlocked: the thread exits with the
// goroutine), and returns when fn has returned. A panic in fn is not
// recovered here: recover inside fn.
//
// The thread is never the main one. Go cannot end the main thread when
// its locked goroutine exits: it parks it for good, still in whatever
// namespace fn left it in, and the process's /proc/<pid>/ns/net shows
// that namespace from then on. Tools that find a namespace's processes
// that way (drlb lab down among them) would take this process for one of
// them.
func Run(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: keep it busy waiting, so the Go
			// scheduler puts fn's goroutine on another thread, then
			// give it back untouched.
			Run(fn)
			runtime.UnlockOSThread()
			return
		}
		fn()
	}()
	<-done
}
