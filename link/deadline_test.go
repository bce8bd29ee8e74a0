package link

import (
	"context"
	"sync"
	"testing"
	"time"
)

type fakeDeadline struct {
	mu sync.Mutex
	t  time.Time
	n  int
}

func (f *fakeDeadline) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t, f.n = t, f.n+1
	return nil
}

func (f *fakeDeadline) get() (time.Time, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t, f.n
}

func TestCtxWatch(t *testing.T) {
	var w ctxWatch
	d := &fakeDeadline{}

	w.arm(context.Background(), d) // never ends: nothing to do
	if _, n := d.get(); n != 0 {
		t.Fatalf("Background armed a deadline (%d calls)", n)
	}

	ctx1, cancel1 := context.WithCancel(context.Background())
	w.arm(ctx1, d)
	_, calls := d.get()
	w.arm(context.WithValue(ctx1, struct{}{}, 1), d) // same Done channel: free
	if _, n := d.get(); n != calls {
		t.Fatal("re-arming the same context touched the deadline")
	}
	cancel1()
	for i := 0; ; i++ { // AfterFunc runs in its own goroutine
		if dl, _ := d.get(); dl.Equal(longAgo) {
			break
		}
		if i > 10000 {
			t.Fatal("ending the context did not set a past deadline")
		}
		time.Sleep(time.Millisecond)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	w.arm(ctx2, d)
	if dl, _ := d.get(); !dl.IsZero() {
		t.Fatalf("a new context kept the old deadline %v", dl)
	}
	w.disarm()
	cancel2()
	time.Sleep(10 * time.Millisecond) // a callback, if any, would run now
	if dl, _ := d.get(); !dl.IsZero() {
		t.Fatal("a disarmed context still set the deadline")
	}
}
