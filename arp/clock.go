package arp

import (
	"context"
	"time"
)

// Clock is the time source of the Announcer and the Resolver. Tests inject
// a fake one so schedules run instantly and deterministically.
type Clock interface {
	Now() time.Time
	// After is time.After: a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Sender transmits one frame on the director's interface (an AF_PACKET
// port in the live director). The frame is only valid during the call:
// implementations must copy it if they keep it.
type Sender interface {
	Send(frame []byte) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(frame []byte) error

func (f SenderFunc) Send(frame []byte) error { return f(frame) }

// runTicks calls tick whenever it asked to be called again (the time it
// returns; zero means only when woken) or wake fires, until ctx is done.
// tick's errors are the caller's to count: a missed send is repeated by a
// later tick, so they never stop the loop.
func runTicks(ctx context.Context, clock Clock, wake <-chan struct{}, tick func(time.Time) (time.Time, error)) error {
	for ctx.Err() == nil {
		now := clock.Now()
		next, _ := tick(now)
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = clock.After(next.Sub(now))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer:
		case <-wake:
		}
	}
	return ctx.Err()
}
