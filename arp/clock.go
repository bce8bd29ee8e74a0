package arp

import "time"

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
