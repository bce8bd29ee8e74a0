package monotime

import (
	"sync/atomic"
	"time"
)

// Limit lets an action happen at most once per interval, measured with
// Now: the first call allows it, then a call allows it again once every
// has passed since the last one allowed. Safe for concurrent use: of
// callers racing, one is allowed. The zero Limit allows at once.
type Limit struct{ last atomic.Int64 }

// Allow reports whether the action may happen now, and if so counts it.
func (l *Limit) Allow(every time.Duration) bool { return l.AllowAt(Now(), every) }

// AllowAt is Allow at now (a Now reading).
func (l *Limit) AllowAt(now int64, every time.Duration) bool {
	last := l.last.Load()
	return (last == 0 || now-last >= int64(every)) && l.last.CompareAndSwap(last, now)
}

// Forget makes the next Allow succeed, as if no action had happened.
func (l *Limit) Forget() { l.last.Store(0) }
