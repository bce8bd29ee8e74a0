package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"unsafe"

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

// Open opens the Conn of a director's interface for self's family.
//
// IPv4: a raw IPv4 socket for protocol 112, bound to ifname
// (SO_BINDTODEVICE), joined to 224.0.0.18 there, not looping its own
// adverts back, sending packets with their own header (IP_HDRINCL: source
// self, TTL 255).
//
// IPv6 (self is the interface's link-local address): a raw IPv6 socket for
// protocol 112 (see open6). It needs CAP_NET_RAW.
func Open(ifname string, self netip.Addr) (Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp: %w", err)
	}
	if self.Is6() && !self.Is4In6() {
		return open6(ifi, self.WithZone(""))
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

// Pending says whether a packet waits in the socket (Pender).
func (c *rawConn) Pending() bool { return pending(c.f) }

// pending says whether a packet waits in f's receive queue (SIOCINQ: the
// length of the first one, 0 when empty, for raw sockets).
func pending(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if err := rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return false
	}
	return n > 0
}

// rawConn6 is a raw IPv6 socket for protocol 112 on one interface. Raw
// IPv6 sockets neither take nor deliver the IPv6 header: Send strips the
// header AppendIPv6 built (the socket sets what it said: source, hop
// limit 255, traffic class 0xc0), Recv builds one from the source, the
// destination (IPV6_PKTINFO) and the hop limit (IPV6_HOPLIMIT).
type rawConn6 struct {
	f  *os.File
	rc interface {
		Read(func(fd uintptr) bool) error
		Write(func(fd uintptr) bool) error
	}
	dst unix.SockaddrInet6
	oob []byte // sendmsg's IPV6_PKTINFO: the source address
}

// open6 opens the IPv6 Conn: a raw socket for protocol 112 bound to the
// interface (SO_BINDTODEVICE), joined to ff02::12 there, multicast hop
// limit 255 and traffic class 0xc0, not looping its own adverts back,
// every advert sent from self (IPV6_PKTINFO), receiving the hop limit and
// the destination of each packet (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO).
// The checksum is the sender's (AppendIPv6) and checked by ParseIPv6.
func open6(ifi *net.Interface, self netip.Addr) (Conn, error) {
	if !self.IsLinkLocalUnicast() {
		return nil, fmt.Errorf("vrrp: IPv6 adverts go from the link-local address of %s, not %v", ifi.Name, self)
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, IPProtocol)
	if err != nil {
		return nil, fmt.Errorf("vrrp: raw IPv6 socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	mreq := &unix.IPv6Mreq{Multiaddr: Group6.As16(), Interface: uint32(ifi.Index)}
	for _, set := range []struct {
		name string
		err  error
	}{
		{"SO_BINDTODEVICE", unix.BindToDevice(fd, ifi.Name)},
		{"IPV6_MULTICAST_IF", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index)},
		{"IPV6_MULTICAST_LOOP", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)},
		{"IPV6_MULTICAST_HOPS", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, HopLimit)},
		{"IPV6_TCLASS", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xc0)},
		{"IPV6_RECVHOPLIMIT", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)},
		{"IPV6_RECVPKTINFO", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)},
		{"IPV6_JOIN_GROUP", unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq)},
	} {
		if set.err != nil {
			return nil, fmt.Errorf("vrrp: %s on %s: %w", set.name, ifi.Name, set.err)
		}
	}
	f := os.NewFile(uintptr(fd), "vrrp6-"+ifi.Name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	ok = true
	info := unix.Inet6Pktinfo{Addr: self.As16(), Ifindex: uint32(ifi.Index)}
	oob := make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	*(*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = info
	return &rawConn6{f: f, rc: rc, dst: unix.SockaddrInet6{Addr: Group6.As16(), ZoneId: uint32(ifi.Index)}, oob: oob}, nil
}

func (c *rawConn6) Send(pkt []byte) error {
	if len(pkt) < ipv6Len {
		return ErrShort
	}
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), pkt[ipv6Len:], c.oob, &c.dst, 0)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	return serr
}

// Recv reads one advert into b[40:] and puts an IPv6 header in front of
// it: hop limit 0 if the kernel gave none (ParseIPv6 then ignores it).
func (c *rawConn6) Recv(b []byte) (int, error) {
	if len(b) < ipv6Len+headerLen {
		return 0, ErrShort
	}
	var oob [128]byte
	var n, oobn int
	var from unix.Sockaddr
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), b[ipv6Len:], oob[:], 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	var src, dst [16]byte
	if sa, ok := from.(*unix.SockaddrInet6); ok {
		src = sa.Addr
	}
	dst = Group6.As16()
	hops := 0
	if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range cms {
			if m.Header.Level != unix.IPPROTO_IPV6 {
				continue
			}
			switch {
			case m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
				hops = int(int32(binary.NativeEndian.Uint32(m.Data)))
			case m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
				copy(dst[:], m.Data[:16])
			}
		}
	}
	h := b[:ipv6Len]
	binary.BigEndian.PutUint32(h, 6<<28)
	binary.BigEndian.PutUint16(h[4:], uint16(n))
	h[6], h[7] = IPProtocol, uint8(max(0, min(hops, 255)))
	if hops < 0 || hops > 255 {
		h[7] = 0
	}
	copy(h[8:], src[:])
	copy(h[24:], dst[:])
	return ipv6Len + n, nil
}

func (c *rawConn6) Close() error { return c.f.Close() }

// Pending says whether a packet waits in the socket (Pender).
func (c *rawConn6) Pending() bool { return pending(c.f) }
