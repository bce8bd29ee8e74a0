package doctor

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// Host is the view of the machine the checks read. The real one, System,
// is Linux (netlink and /proc/sys); tests substitute their own, so the
// checks themselves run anywhere.
type Host interface {
	// Sysctl reads a value under /proc/sys, e.g. "net/ipv4/ip_forward".
	Sysctl(path string) (string, error)
	// Link returns an interface's state.
	Link(name string) (LinkInfo, error)
	// Addrs lists every address on every interface, with its interface.
	Addrs() ([]IfAddr, error)
	// DefaultGateways lists the default routes' gateways.
	DefaultGateways() ([]netip.Addr, error)
	// Offloads reports the interface's offload features (name -> on).
	Offloads(name string) (map[string]bool, error)
	// Ping sends one echo of size bytes (IP packet, don't fragment) and
	// reports whether it was answered within timeout.
	Ping(addr netip.Addr, size int, timeout time.Duration) (bool, error)
	// Connect opens a TCP connection to addr within timeout and closes
	// it at once: nil when it was accepted.
	Connect(addr netip.AddrPort, timeout time.Duration) error
}

// LinkInfo is an interface's state.
type LinkInfo struct {
	Name string
	Up   bool
	// NoCarrier: up, but the link layer is down (IFF_LOWER_UP clear: a
	// cable out, a switch port down, a veth whose peer is down).
	NoCarrier bool
	MTU       int
	MAC       net.HardwareAddr
	// RxQueues is how many receive queues it uses (ethtool's channels;
	// 0: not known).
	RxQueues int
}

// IfAddr is an address configured on an interface.
type IfAddr struct {
	Iface string
	Addr  netip.Prefix
}

// ErrNoInterface is returned by Host.Link for a missing interface.
var ErrNoInterface = errors.New("no such interface")

// ErrUnsupported is returned by System's methods where the host cannot be
// read: everywhere but Linux.
var ErrUnsupported = errors.New("doctor: host checks need Linux (netlink, /proc/sys)")

// System is the Host of the running machine (in the caller's network
// namespace).
type System struct{}

// Connect opens and closes a TCP connection: it needs no privilege and
// works everywhere.
func (System) Connect(addr netip.AddrPort, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr.String(), timeout)
	if err != nil {
		return err
	}
	return c.Close()
}
