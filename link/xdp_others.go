//go:build !linux

package link

import (
	"fmt"
	"net/netip"
)

// OpenXDP needs Linux; elsewhere it reports ErrUnsupported.
func OpenXDP(ifname string, cfg Config, vips []netip.Addr) (Port, error) {
	return nil, fmt.Errorf("link: %s: AF_XDP: %w", ifname, ErrUnsupported)
}
