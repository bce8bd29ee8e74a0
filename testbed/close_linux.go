package testbed

import (
	"errors"
	"slices"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
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
	untrack(l)
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

// killProcesses sends SIGKILL, by pid, to every process still running in
// l's namespaces (PIDsIn: never this one), for CloseAllOnSignal: what a
// test started there (a director, keepalived, BIRD, trafgen), which its
// cleanups would have stopped.
func (l *Lab) killProcesses() {
	l.mu.RLock()
	names, closed := slices.Clone(l.created), l.closed
	l.mu.RUnlock()
	if closed {
		return
	}
	for _, name := range names {
		pids, _ := PIDsIn(name)
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}
