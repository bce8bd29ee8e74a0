//go:build !linux

package doctor

import (
	"net/netip"
	"time"
)

// System's methods fail off Linux: the checks read netlink and /proc/sys.
// The checks themselves (Director, RealServer) still run against any Host.

func (System) Sysctl(string) (string, error)                     { return "", ErrUnsupported }
func (System) Link(string) (LinkInfo, error)                     { return LinkInfo{}, ErrUnsupported }
func (System) Addrs() ([]IfAddr, error)                          { return nil, ErrUnsupported }
func (System) DefaultGateways() ([]netip.Addr, error)            { return nil, ErrUnsupported }
func (System) Offloads(string) (map[string]bool, error)          { return nil, ErrUnsupported }
func (System) Ping(netip.Addr, int, time.Duration) (bool, error) { return false, ErrUnsupported }
