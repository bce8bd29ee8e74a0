//go:build !linux

package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
)

// Open needs Linux (a raw IPv4 or IPv6 socket bound to the interface).
func Open(ifname string, self netip.Addr) (Conn, error) {
	return nil, fmt.Errorf("vrrp: needs Linux (raw socket on %s): %w", ifname, errors.ErrUnsupported)
}
