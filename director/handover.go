package director

import (
	"context"
	"time"
)

// serveHandingOver runs d until ctx ends; then handOver tells the other
// directors (BGP withdraw, VRRP resignation) and returns how long d keeps
// forwarding while they take the flows over, before it stops: a SIGTERM
// breaks no flow. handOver gets the context d runs on, done if d stopped
// by itself meanwhile.
func serveHandingOver(ctx context.Context, d *Director, handOver func(running context.Context) time.Duration) error {
	if ctx.Err() != nil {
		// Stopped while starting: Serve would not see it (it runs on
		// inner), and would announce, start VRRP and tell systemd
		// READY after STOPPING; there is nothing to hand over.
		return nil
	}
	inner, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-inner.Done():
			return
		case <-ctx.Done():
		}
		if grace := handOver(inner); grace > 0 {
			select {
			case <-inner.Done():
			case <-time.After(grace):
			}
		}
		cancel()
	}()
	return d.Serve(inner)
}
