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
	signalClosesLab(t, l, func() (stop func()) { return l.CloseOnSignal(t.Context()) })
	assertGone(t, l.Name)
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

// signalClosesLab starts watch (a CloseOnSignal), sends this process
// SIGTERM and checks that l is closed within 10 s and that the program
// still hears the signal, once directly and once re-raised. The test's own
// handler stands in for the program's, so the re-raised signal does not
// kill the test binary.
func signalClosesLab(t *testing.T, l *Lab, watch func() (stop func())) {
	t.Helper()
	mine := make(chan os.Signal, 4)
	signal.Notify(mine, syscall.SIGTERM)
	defer signal.Stop(mine)
	stop := watch()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l.mu.RLock()
		closed := l.closed
		l.mu.RUnlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lab not closed 10s after SIGTERM")
		}
	}
	for i := range 2 {
		select {
		case <-mine:
		case <-time.After(10 * time.Second):
			t.Fatalf("signal %d never reached the program's handler", i+1)
		}
	}
}
