package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// rawConn is a raw IPv4 socket for protocol 112 on one interface.
type rawConn struct {
	f  *os.File
	rc interface {
		Read(func(fd uintptr) bool) error
		Write(func(fd uintptr) bool) error
	}
	dst unix.SockaddrInet4
}

// Open opens the Conn of a director's interface: a raw IPv4 socket for
// protocol 112, bound to ifname (SO_BINDTODEVICE), joined to 224.0.0.18
// there, not looping its own adverts back, sending packets with their own
// header (IP_HDRINCL: source self, TTL 255). It needs CAP_NET_RAW.
func Open(ifname string, self netip.Addr) (Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp: %w", err)
	}
	if !self.Is4() {
		return nil, fmt.Errorf("vrrp: %s has no IPv4 address to send adverts from", ifname)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, IPProtocol)
	if err != nil {
		return nil, fmt.Errorf("vrrp: raw socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	mreq := &unix.IPMreqn{Multiaddr: Group.As4(), Address: self.As4(), Ifindex: int32(ifi.Index)}
	for _, set := range []struct {
		name string
		err  error
	}{
		{"SO_BINDTODEVICE", unix.BindToDevice(fd, ifname)},
		{"IP_HDRINCL", unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1)},
		{"IP_MULTICAST_IF", unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq)},
		{"IP_MULTICAST_LOOP", unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)},
		{"IP_MULTICAST_TTL", unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, TTL)},
		{"IP_ADD_MEMBERSHIP", unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq)},
	} {
		if set.err != nil {
			return nil, fmt.Errorf("vrrp: %s on %s: %w", set.name, ifname, set.err)
		}
	}
	f := os.NewFile(uintptr(fd), "vrrp-"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	ok = true
	return &rawConn{f: f, rc: rc, dst: unix.SockaddrInet4{Addr: Group.As4()}}, nil
}

func (c *rawConn) Send(pkt []byte) error {
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), pkt, 0, &c.dst)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	return serr
}

func (c *rawConn) Recv(b []byte) (int, error) {
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), b, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr // n is -1 then
	}
	return n, nil
}

func (c *rawConn) Close() error { return c.f.Close() }
