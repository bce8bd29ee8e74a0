package testutil

import (
	"fmt"
	"runtime/debug"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread inside ns and returns fn's error. Sockets that
// fn opens stay in ns for their whole life; goroutines that fn starts do
// not run in ns. The thread is thrown away afterwards, so the namespace
// switch never leaks to the rest of the test. A panic in fn is raised
// again in the caller, so the test's cleanups still run.
//
// fn runs on another goroutine: it must report with an error (or
// t.Error), not t.Fatal.
func Do(ns netns.NsHandle, fn func() error) error {
	type result struct {
		err      error
		panicked bool
		value    any
		stack    []byte
	}
	var r result
	onSpareThread(func() {
		defer func() {
			if p := recover(); p != nil {
				r = result{panicked: true, value: p, stack: debug.Stack()}
			}
		}()
		if err := netns.Set(ns); err != nil {
			r.err = fmt.Errorf("testutil: entering network namespace %v: %w", ns, err)
			return
		}
		r.err = fn()
	})
	if r.panicked {
		panic(fmt.Sprintf("testutil: panic in Do(%v): %v\n%s", ns, r.value, r.stack))
	}
	return r.err
}
