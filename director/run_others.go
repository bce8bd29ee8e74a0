//go:build !linux

package director

import (
	"context"
	"errors"
	"net/netip"

	"github.com/drlb/drlb/config"
)

// ErrUnsupported is returned by Run where the director cannot run: it needs
// Linux's AF_PACKET sockets. New and Serve, on any Port (link.Pipe), work
// everywhere.
var ErrUnsupported = errors.New("director: needs Linux (AF_PACKET)")

// Run needs Linux; elsewhere it reports ErrUnsupported.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	return ErrUnsupported
}

// interfaceIPv4 needs Linux's netlink: none elsewhere.
func interfaceIPv4(string) []netip.Addr { return nil }
