package testbed

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// open is every lab New built in this process that Close has not closed
// yet, for CloseAllOnSignal.
var open = struct {
	sync.Mutex
	labs map[*Lab]bool
}{labs: map[*Lab]bool{}}

// track adds l to open; Close removes it (untrack).
func track(l *Lab) {
	open.Lock()
	defer open.Unlock()
	open.labs[l] = true
}

func untrack(l *Lab) {
	open.Lock()
	defer open.Unlock()
	delete(open.labs, l)
}

// openLabs returns the labs in open.
func openLabs() []*Lab {
	open.Lock()
	defer open.Unlock()
	labs := make([]*Lab, 0, len(open.labs))
	for l := range open.labs {
		labs = append(labs, l)
	}
	return labs
}

// CloseAllOnSignal is CloseOnSignal for every lab this process has open,
// for a test binary's TestMain. A signal ends a test binary without its
// t.Cleanup functions: its labs' namespaces would stay under
// /var/run/netns, and the processes its tests started in them (a
// director, keepalived, BIRD, trafgen) would go on running there. On
// SIGINT (Ctrl-C of go test or scripts/bench) or SIGTERM it kills those
// processes by pid (the ones in each open lab's namespaces, never this
// one), closes the labs, then re-raises the signal as CloseOnSignal does.
// stop ends the watching.
func CloseAllOnSignal() (stop func()) {
	return onSignal(context.Background(), func() {
		for _, l := range openLabs() {
			l.killProcesses()
			l.Close()
		}
	})
}

// CloseOnSignal closes the lab when the process gets SIGINT (Ctrl-C) or
// SIGTERM, then re-raises the signal so it has the effect it would have had
// without this call: the process dies, unless the program itself handles
// the signal (e.g. with signal.NotifyContext), in which case it is told as
// usual. Watching stops when ctx ends or stop is called; stop does not
// close the lab (defer Close for that).
func (l *Lab) CloseOnSignal(ctx context.Context) (stop func()) {
	return onSignal(ctx, func() { l.Close() })
}

// onSignal runs cleanup when the process gets SIGINT or SIGTERM, then
// re-raises the signal (CloseOnSignal), until ctx ends or stop is called.
func onSignal(ctx context.Context, cleanup func()) (stop func()) {
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
			cleanup()
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
