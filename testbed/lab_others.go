//go:build !linux

package testbed

import (
	"context"
	"net"
	"net/http"
	"net/netip"
)

// New fails: labs need Linux network namespaces.
func New(ctx context.Context, opts Options) (*Lab, error) { return nil, ErrUnsupported }

// Close does nothing off Linux.
func (l *Lab) Close() error { return nil }

// killProcesses does nothing off Linux.
func (l *Lab) killProcesses() {}

// Do fails off Linux.
func (l *Lab) Do(h *Host, fn func() error) error { return ErrUnsupported }

// Dial fails off Linux.
func (l *Lab) Dial(ctx context.Context, h *Host, network, address string) (net.Conn, error) {
	return nil, ErrUnsupported
}

// DialUDP fails off Linux.
func (l *Lab) DialUDP(h *Host, raddr netip.AddrPort) (net.Conn, error) { return nil, ErrUnsupported }

// Listen fails off Linux.
func (l *Lab) Listen(ctx context.Context, h *Host, network, address string) (net.Listener, error) {
	return nil, ErrUnsupported
}

// ListenPacket fails off Linux.
func (l *Lab) ListenPacket(ctx context.Context, h *Host, network, address string) (net.PacketConn, error) {
	return nil, ErrUnsupported
}

// HTTPClient returns a client whose dials fail off Linux.
func (l *Lab) HTTPClient(h *Host) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, ErrUnsupported
	}}}
}

// StartServices fails off Linux.
func (l *Lab) StartServices(ctx context.Context) error { return ErrUnsupported }

// Cleanup fails off Linux.
func Cleanup(prefix string) error { return ErrUnsupported }

// CleanupStale fails off Linux.
func CleanupStale() error { return ErrUnsupported }

// BIRD is BIRD 2 in the router's namespace: Linux only.
type BIRD struct{}
