package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/drlb/drlb/testbed"
)

// Serve runs a real server's services in the calling process's network
// namespace until ctx ends: testbed.NewHandler's HTTP on port 80 and the UDP
// echo on port 7, each bound separately to every address in addrs (the VIP
// among them), so replies to the VIP leave with source VIP. It is
// `drlb lab serve`, which a kept lab runs detached in each real server's
// namespace, since the lab's in-process services end with `drlb lab`.
func Serve(ctx context.Context, name string, addrs []netip.Addr) error {
	if len(addrs) == 0 {
		return fmt.Errorf("%w: serve needs at least one address", ErrOptions)
	}
	srv := &http.Server{Handler: testbed.NewHandler(name), ReadHeaderTimeout: 10 * time.Second}
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	errc := make(chan error, 2*len(addrs))
	for _, a := range addrs {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, testbed.HTTPPort).String())
		if err != nil {
			return err
		}
		closers = append(closers, ln.Close)
		pc, err := net.ListenPacket("udp", netip.AddrPortFrom(a, testbed.EchoPort).String())
		if err != nil {
			return err
		}
		closers = append(closers, pc.Close)
		go func() { errc <- srv.Serve(ln) }()
		go func() { errc <- testbed.ServeEcho(pc, name) }()
	}
	closers = append(closers, srv.Close)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) || err == nil {
			return nil
		}
		return err
	}
}
