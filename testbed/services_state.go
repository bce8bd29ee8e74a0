package testbed

import (
	"errors"
	"net"
	"net/http"
	"sync"
)

// services are the listeners and servers StartServices runs.
type services struct {
	mu      sync.Mutex
	stopped bool
	servers []*http.Server
	pconns  []net.PacketConn
	wg      sync.WaitGroup
	done    chan struct{}
}

// stop closes every server and socket and waits for their goroutines.
func (s *services) stop() error {
	s.mu.Lock()
	var errs []error
	if !s.stopped {
		s.stopped = true
		close(s.done)
		for _, srv := range s.servers {
			errs = append(errs, srv.Close())
		}
		for _, pc := range s.pconns {
			if err := pc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return errors.Join(errs...)
}
