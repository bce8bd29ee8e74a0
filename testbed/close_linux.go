package testbed

import (
	"errors"

	"github.com/vishvananda/netns"
)

// Close stops the services and BIRD, closes the namespace handles and removes every
// namespace the lab made; the links inside go with them (none was ever in
// the root namespace). It is idempotent, safe to call concurrently and from
// a signal-handling goroutine, and returns the first call's result.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.closeErr
	}
	l.closed = true
	var errs []error
	if l.svc != nil {
		errs = append(errs, l.svc.stop())
	}
	for _, b := range l.birds {
		errs = append(errs, b.Stop())
	}
	for _, h := range l.allHosts() {
		if h != nil && h.NS.IsOpen() {
			errs = append(errs, h.NS.Close())
			h.NS = netns.None()
		}
	}
	for i := len(l.created) - 1; i >= 0; i-- {
		errs = append(errs, deleteNamedNS(l.created[i]))
	}
	l.closeErr = errors.Join(errs...)
	return l.closeErr
}
