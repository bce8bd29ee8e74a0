package testutil

import (
	"fmt"
	"runtime"
	"testing"
)

// fakeTB records what a helper does to its test: skip, fail, cleanups.
// Skip and Fatal end the goroutine, as they do in a real test, so helpers
// must run under runFake.
type fakeTB struct {
	testing.TB // the real test, for TempDir and the like
	skipped    string
	failed     string
	cleanups   []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skip(args ...any) { f.Skipf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) SkipNow() { f.Skipf("SkipNow") }

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) FailNow() { f.Fatalf("FailNow") }

func (f *fakeTB) Error(args ...any)                 { f.failed = fmt.Sprint(args...) }
func (f *fakeTB) Errorf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// runFake runs fn as a test body with a fakeTB on its own goroutine, then
// its cleanups (last first), and returns what happened.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	t.Helper()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			for i := len(f.cleanups) - 1; i >= 0; i-- {
				f.cleanups[i]()
			}
		}()
		fn(f)
	}()
	<-done
	return f
}
