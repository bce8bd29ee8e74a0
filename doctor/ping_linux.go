package doctor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Ping sends one ICMP echo of size bytes (IP packet) to addr with the
// don't-fragment bit set and reports whether the reply came within
// timeout. It needs root (raw ICMP socket).
func (System) Ping(addr netip.Addr, size int, timeout time.Duration) (bool, error) {
	network, proto, hdr := "ip4:icmp", 1, 20+8
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if addr.Is6() {
		network, proto, hdr = "ip6:ipv6-icmp", 58, 40+8
		typ = ipv6.ICMPTypeEchoRequest
	}
	pc, err := net.ListenPacket(network, "")
	if err != nil {
		return false, err
	}
	defer pc.Close()
	c := pc.(*net.IPConn)
	if err := setDontFragment(c, addr.Is6()); err != nil {
		return false, err
	}
	id := os.Getpid() & 0xffff
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: 1, Data: make([]byte, max(size-hdr, 0))}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return false, err
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: addr.AsSlice()}); err != nil {
		if errors.Is(err, syscall.EMSGSIZE) {
			return false, fmt.Errorf("%d bytes exceed the local path MTU", size)
		}
		return false, err
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1<<16)
	for {
		_ = c.SetReadDeadline(deadline)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, nil
			}
			return false, err
		}
		if a, ok := from.(*net.IPAddr); !ok || !a.IP.Equal(addr.AsSlice()) {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && (m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply) && e.ID == id {
			return true, nil
		}
	}
}

// setDontFragment makes the kernel refuse to fragment (IPv4 DF; IPv6 never
// fragments in transit, and IPV6_DONTFRAG stops local fragmentation).
func setDontFragment(c *net.IPConn, v6 bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
