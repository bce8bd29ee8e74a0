package link

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// closeWake ends a reader's wait in poll(2) when its port closes: an
// eventfd that the port polls beside its sockets and that Close makes
// readable, so that the reader returns at once instead of at the end of
// its wait.
//
// That lets an idle reader wait long (idleWaitMillis). A short wait
// (50 ms) cost an idle director more than the frames it waits for: each
// wait that outlasts 10 ms has the Go runtime's sysmon take the worker's
// P back and restart its own polling at 20 µs, and the next wait's
// system call wakes it again. With two idle AF_XDP workers and kernel
// flows, drlb spent 8-10 ms of CPU a second in 300-420 context switches;
// with the long wait (and the kernel-flow follower's slower tick), 2 ms
// in about 50.
// The zero value is no eventfd: wake and close do nothing.
type closeWake struct{ fd int32 }

// newCloseWake opens the eventfd.
func newCloseWake() (closeWake, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return closeWake{}, err
	}
	return closeWake{int32(fd) + 1}, nil
}

// pollFd is the entry that waits for it.
func (w closeWake) pollFd() unix.PollFd { return unix.PollFd{Fd: w.fd - 1, Events: unix.POLLIN} }

// wake makes it readable, for good: every later poll returns at once.
func (w closeWake) wake() {
	if w.fd != 0 {
		one := [8]byte{1}
		_, _ = unix.Write(int(w.fd-1), one[:])
	}
}

// close closes it, once no reader polls it any more.
func (w *closeWake) close() {
	if w.fd != 0 {
		_ = unix.Close(int(w.fd - 1))
		w.fd = 0
	}
}

// idleWaitMillis bounds a reader's wait in poll(2) when nothing is due
// sooner: Close ends it at once (closeWake), a context that ends without
// Close is seen within it.
const idleWaitMillis = 1000

// ctxWaitMillis is wait cut to what is left before ctx's deadline, so
// that a reader whose context ends by its deadline returns then (0 stays
// 0: no wait).
func ctxWaitMillis(ctx context.Context, wait int) int {
	if d, ok := ctx.Deadline(); ok && wait > 0 {
		return max(min(wait, int(time.Until(d)/time.Millisecond)+1), 0)
	}
	return wait
}
