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

// ReadBuffer is the receive buffer ListenUDP asks for: a bulk copy
// arrives in bursts (16 datagrams between pauses, per answer), and what
// overflows the buffer is lost, then asked for again.
const ReadBuffer = 4 << 20

// BufferReporter is a Conn that can say what receive buffer it has
// (ListenUDP's can).
type BufferReporter interface {
	// ReadBuffer is the receive buffer the kernel gave (bytes of data, as
	// asked; 0 when unknown) and the error setting it, if any.
	ReadBuffer() (int, error)
}

type udpConn struct {
	c       *net.UDPConn
	rbuf    int
	rbufErr error
}

// ListenUDP opens the sync socket on self:Port, asking for a receive
// buffer of ReadBuffer bytes: the kernel caps it at net.core.rmem_max
// without an error (ReadBuffer tells).
func ListenUDP(self netip.Addr) (Conn, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(self, Port)))
	if err != nil {
		return nil, err
	}
	u := udpConn{c: c}
	u.rbuf, u.rbufErr = setReadBuffer(c, ReadBuffer)
	return u, nil
}

// setReadBuffer asks for a receive buffer of n bytes and returns what
// the socket got (0: unknown).
func setReadBuffer(c *net.UDPConn, n int) (int, error) {
	if err := c.SetReadBuffer(n); err != nil {
		return 0, err
	}
	return readBuffer(c), nil
}

func (u udpConn) ReadBuffer() (int, error) { return u.rbuf, u.rbufErr }

func (u udpConn) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := u.c.WriteToUDPAddrPort(b, to)
	return err
}

func (u udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := u.c.ReadFromUDPAddrPort(b)
	return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

func (u udpConn) Close() error { return u.c.Close() }
