package testbed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/drlb/drlb/internal/osthread"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread inside h's network namespace and returns its
// error. Sockets that fn creates belong to that namespace for their whole
// life, wherever they are used later; goroutines that fn starts do NOT run
// in the namespace. The thread is discarded afterwards, so a namespace never
// leaks into the rest of the program. A panic in fn is re-raised in the
// caller's goroutine, so the caller's deferred Close still runs.
func (l *Lab) Do(h *Host, fn func() error) error {
	type result struct {
		err      error
		panicked bool
		value    any
		stack    []byte
	}
	ch := make(chan result, 1)
	osthread.Run(func() {
		// A thread of its own, never the main one, thrown away after.
		defer func() {
			if p := recover(); p != nil {
				ch <- result{panicked: true, value: p, stack: debug.Stack()}
			}
		}()
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			ch <- result{err: ErrClosed}
			return
		}
		err := netns.Set(h.NS)
		l.mu.RUnlock()
		if err != nil {
			ch <- result{err: fmt.Errorf("entering namespace %s: %w", h.NSName, err)}
			return
		}
		ch <- result{err: fn()}
	})
	r := <-ch
	if r.panicked {
		panic(fmt.Sprintf("lab: panic in Do(%s): %v\n%s", h.Name, r.value, r.stack))
	}
	return r.err
}

// Dial connects from inside h's namespace, like net.Dialer.DialContext.
// Use IP literals: name resolution is not namespace-aware.
func (l *Lab) Dial(ctx context.Context, h *Host, network, address string) (net.Conn, error) {
	var c net.Conn
	err := l.Do(h, func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// DialUDP returns a connected UDP socket in h's namespace, e.g. to the
// VIP's echo service: l.DialUDP(l.Client, netip.AddrPortFrom(l.VIP, testbed.EchoPort)).
func (l *Lab) DialUDP(h *Host, raddr netip.AddrPort) (net.Conn, error) {
	return l.Dial(context.Background(), h, "udp", raddr.String())
}

// Listen opens a listener in h's namespace, like net.ListenConfig.Listen.
func (l *Lab) Listen(ctx context.Context, h *Host, network, address string) (net.Listener, error) {
	var ln net.Listener
	err := l.Do(h, func() error {
		var lc net.ListenConfig
		var err error
		ln, err = lc.Listen(ctx, network, address)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket in h's namespace, like net.ListenConfig.ListenPacket.
func (l *Lab) ListenPacket(ctx context.Context, h *Host, network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := l.Do(h, func() error {
		var lc net.ListenConfig
		var err error
		pc, err = lc.ListenPacket(ctx, network, address)
		return err
	})
	return pc, err
}

// HTTPClient returns a client whose connections are made inside h's
// namespace. It ignores proxy environment variables. Call
// CloseIdleConnections when done: idle sockets keep a closed lab's
// namespaces alive (though unnamed) until they are closed.
func (l *Lab) HTTPClient(h *Host) *http.Client {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.Dial(ctx, h, network, addr)
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr}
}

// Netlink opens a netlink handle whose sockets are in h's namespace; the
// caller closes it. After Close it returns ErrClosed: netlink.NewHandleAt
// given the closed namespace (netns.None) would open its sockets in the
// caller's own namespace, the host's, and whatever the caller did next
// (flush neighbours, set an MTU) would change the host. A handle opened
// before Close keeps acting on h's namespace only.
func (l *Lab) Netlink(h *Host) (*netlink.Handle, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	if !h.NS.IsOpen() {
		return nil, fmt.Errorf("%s: %w", h.NSName, ErrClosed)
	}
	return netlink.NewHandleAt(h.NS)
}
