package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// StartServices starts, in every real server's namespace, the HTTP handler
// of NewHandler on port 80 and the UDP echo of ServeEcho on port 7. Each is
// bound separately to the VIP, the VIP6 and the real server's own IPv4 and
// IPv6 address, so that a reply to the VIP leaves with source VIP (a
// wildcard-bound UDP socket would answer from the real server's own
// address). They run until ctx ends or the lab closes.
func (l *Lab) StartServices(ctx context.Context) error {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	case l.svc != nil:
		l.mu.Unlock()
		return ErrServicesStarted
	}
	s := &services{done: make(chan struct{})}
	l.svc = s
	l.mu.Unlock()

	if err := l.startServices(ctx, s); err != nil {
		return errors.Join(err, s.stop())
	}
	go func() {
		select {
		case <-ctx.Done():
			s.stop()
		case <-s.done:
		}
	}()
	return nil
}

func (l *Lab) startServices(ctx context.Context, s *services) error {
	for _, rs := range l.RealServers {
		srv := &http.Server{
			Handler:           NewHandler(rs.Name),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0),
		}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.mu.Unlock()
		for _, a := range []netip.Addr{l.VIP, rs.IPv4, l.VIP6, rs.IPv6} {
			var ln net.Listener
			var pc net.PacketConn
			err := l.Do(rs, func() error {
				var lc net.ListenConfig
				var err error
				if ln, err = lc.Listen(ctx, "tcp", netip.AddrPortFrom(a, HTTPPort).String()); err != nil {
					return err
				}
				if pc, err = lc.ListenPacket(ctx, "udp", netip.AddrPortFrom(a, EchoPort).String()); err != nil {
					ln.Close()
					return err
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("starting services on %s in %s: %w", a, rs.NSName, err)
			}
			s.mu.Lock()
			if s.stopped { // ctx ended meanwhile
				s.mu.Unlock()
				ln.Close()
				pc.Close()
				return context.Cause(ctx)
			}
			s.pconns = append(s.pconns, pc)
			s.wg.Go(func() { srv.Serve(ln) })
			s.wg.Go(func() { ServeEcho(pc, rs.Name) })
			s.mu.Unlock()
		}
	}
	return nil
}
