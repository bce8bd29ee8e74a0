package director

import (
	"time"

	"golang.org/x/sys/unix"
)

// coalesceWait waits d for Options.RxCoalesce. Not time.Sleep: the Go
// runtime waits for timers in epoll_pwait, whose timeout is in whole
// milliseconds, so time.Sleep(200 * time.Microsecond) slept 1.1 ms here;
// nanosleep(2) holds the worker's thread for d plus the kernel's timer
// slack (about 270 µs for 200).
func coalesceWait(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
