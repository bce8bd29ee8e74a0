package testbed

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCloseOnSignal(t *testing.T) {
	l := newTestLab(t, Options{RealServers: 1})
	// Our own handler stands in for the program's, so the re-raised signal
	// does not kill the test binary.
	mine := make(chan os.Signal, 4)
	signal.Notify(mine, syscall.SIGTERM)
	defer signal.Stop(mine)
	stop := l.CloseOnSignal(t.Context())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.RLock()
		closed := l.closed
		l.mu.RUnlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lab not closed 10s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	assertGone(t, l.Name)
	// The program still hears the signal: once directly, once re-raised.
	for i := range 2 {
		select {
		case <-mine:
		case <-time.After(10 * time.Second):
			t.Fatalf("signal %d never reached the program's handler", i+1)
		}
	}
}

func TestDoPanicReachesCaller(t *testing.T) {
	l := newTestLab(t, Options{RealServers: 1})
	defer func() {
		p := recover()
		if s, _ := p.(string); !strings.Contains(s, "boom") {
			t.Errorf("recovered %v, want the panic from fn", p)
		}
	}()
	l.Do(l.Client, func() error { panic("boom") })
	t.Error("Do returned after fn panicked")
}
