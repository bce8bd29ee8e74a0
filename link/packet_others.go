//go:build !linux

package link

import (
	"errors"
	"fmt"
)

// ErrUnsupported is returned by Open where AF_PACKET does not exist.
var ErrUnsupported = errors.New("link: AF_PACKET ports need Linux")

// Open needs Linux; elsewhere it reports ErrUnsupported.
func Open(ifname string, cfg Config) (Port, error) {
	return nil, fmt.Errorf("link: %s: %w", ifname, ErrUnsupported)
}
