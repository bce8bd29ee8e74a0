// Package monotime gives rate limits and hold-offs a clock that the wall
// clock's steps do not move.
//
// time.Now().UnixNano() drops the monotonic reading: a hold-off stored
// that way and compared after NTP set the clock back an hour (a step at
// boot, a VM restored from a snapshot) holds for that hour, and one
// compared after a step forward ends at once. Now counts from the
// process's start on the monotonic clock and fits an atomic.Int64, which
// the hot paths that read it need (a time.Time does not).
package monotime
