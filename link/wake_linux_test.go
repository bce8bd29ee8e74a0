package link

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestCloseEndsWait: Close ends a reader's wait in poll(2) at once,
// however long the wait: a splitPort reader waiting with no timeout at
// all returns ErrClosed, where without closeWake it would wait until a
// frame came (the guard fails it).
func TestCloseEndsWait(t *testing.T) {
	_, pd := splitPair(t)
	p := pd.(*splitPort)
	done := make(chan error, 1)
	go func() {
		for { // frames the kernel sends on its own (NDP) end a read too
			if _, err := p.read(context.Background(), make([]Frame, 8), -1); err != nil { // no timeout
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // the reader is in poll (or about to be: then it sees closed)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantClosedRead(t, done)
}

// TestXDPCloseEndsWait: the same for an AF_XDP port's reader (its wait
// is idleWaitMillis; the guard is a hang guard only).
func TestXDPCloseEndsWait(t *testing.T) {
	l := newPairLab(t)
	p := openXDPIn(t, l.nsD, "d0", []netip.Addr{vip4})
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := p.ReadBatch(context.Background(), make([]Frame, 8)); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantClosedRead(t, done)
}

// wantClosedRead fails t unless the read that ends on done returns
// ErrClosed; the guard is a hang guard.
func wantClosedRead(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("the waiting read returned %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the reader's wait")
	}
}

func TestCtxWaitMillis(t *testing.T) {
	past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	soon, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	late, cancel3 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel3()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		wait     int
		min, max int
	}{
		{"no deadline", context.Background(), idleWaitMillis, idleWaitMillis, idleWaitMillis},
		{"no wait stays no wait", soon, 0, 0, 0},
		{"deadline passed", past, idleWaitMillis, 0, 0},
		{"deadline sooner", soon, idleWaitMillis, 1, 201},
		{"deadline later", late, idleWaitMillis, idleWaitMillis, idleWaitMillis},
	} {
		if got := ctxWaitMillis(tc.ctx, tc.wait); got < tc.min || got > tc.max {
			t.Errorf("%s: ctxWaitMillis(%d) = %d, want %d..%d", tc.name, tc.wait, got, tc.min, tc.max)
		}
	}
}

// TestCloseWakeZero: the zero closeWake is no eventfd: waking or closing
// it touches no descriptor (fd 0 among them).
func TestCloseWakeZero(t *testing.T) {
	var w closeWake
	w.wake()
	w.close()
	if w.pollFd().Fd != -1 {
		t.Fatalf("the zero closeWake polls fd %d, want -1 (poll ignores it)", w.pollFd().Fd)
	}
}
