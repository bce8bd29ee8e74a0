package link

import (
	"context"
	"sync"
	"time"
)

// readDeadliner is the part of a socket that ctxWatch needs.
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// longAgo is a deadline in the past: setting it wakes a blocked read at once.
var longAgo = time.Unix(1, 0)

// ctxWatch turns the end of a context into a read deadline in the past, so
// a read blocked in the runtime poller returns. Arming it for the context it
// already watches is free, so a read loop that passes the same ctx on every
// call allocates only once (context.AfterFunc) instead of once per batch.
type ctxWatch struct {
	mu   sync.Mutex
	done <-chan struct{} // Done channel of the watched context; nil = none
	stop func() bool
}

// arm makes pending and later reads on d fail once ctx ends. Contexts are
// told apart by their Done channel, which is comparable even when the
// context type itself is not.
func (w *ctxWatch) arm(ctx context.Context, d readDeadliner) {
	done := ctx.Done()
	w.mu.Lock()
	if done == w.done {
		w.mu.Unlock()
		return
	}
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
	w.done = done
	w.mu.Unlock()
	// A callback of the previous context that already fired may have set a
	// past deadline; the new context starts clean.
	_ = d.SetReadDeadline(time.Time{})
	if done == nil {
		return // never ends: nothing to watch
	}
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.done == done { // still the watched context
			_ = d.SetReadDeadline(longAgo)
		}
	})
	w.mu.Lock()
	w.stop = stop
	w.mu.Unlock()
}

// disarm stops watching (on Close).
func (w *ctxWatch) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
	w.done = nil
}
