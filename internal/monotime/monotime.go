package monotime

import "time"

// start is read once, at package initialisation, and never written:
// Now's zero.
var start = time.Now()

// Now is the monotonic time in nanoseconds since the process started,
// never 0, so that callers may keep 0 for "never".
func Now() int64 {
	return int64(time.Since(start)) + 1
}
