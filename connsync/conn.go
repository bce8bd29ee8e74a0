package connsync

import (
	"net"
	"net/netip"
)

// Conn carries sync datagrams. UDP (ListenUDP) live; tests pass an
// in-memory one.
type Conn interface {
	WriteTo(b []byte, to netip.AddrPort) error
	// ReadFrom reads one datagram; it returns an error once closed.
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	Close() error
}

type udpConn struct{ c *net.UDPConn }

// ListenUDP opens the sync socket on self:Port.
func ListenUDP(self netip.Addr) (Conn, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(self, Port)))
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20) // a bulk copy arrives in bursts
	return udpConn{c}, nil
}

func (u udpConn) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := u.c.WriteToUDPAddrPort(b, to)
	return err
}

func (u udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := u.c.ReadFromUDPAddrPort(b)
	return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

func (u udpConn) Close() error { return u.c.Close() }
