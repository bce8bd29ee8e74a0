//go:build !linux

package director

import "time"

// coalesceWait waits d for Options.RxCoalesce (the data path runs on Linux
// only).
func coalesceWait(d time.Duration) { time.Sleep(d) }
