package testbed

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// CloseOnSignal closes the lab when the process gets SIGINT (Ctrl-C) or
// SIGTERM, then re-raises the signal so it has the effect it would have had
// without this call: the process dies, unless the program itself handles
// the signal (e.g. with signal.NotifyContext), in which case it is told as
// usual. Watching stops when ctx ends or stop is called; stop does not
// close the lab (defer Close for that).
func (l *Lab) CloseOnSignal(ctx context.Context) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	quit := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(ch)
			close(quit)
		})
	}
	go func() {
		select {
		case sig := <-ch:
			l.Close()
			stop()
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Signal(sig)
			}
		case <-ctx.Done():
			stop()
		case <-quit:
		}
	}()
	return stop
}
