package link

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// packetConn is what an afpacket needs of its socket beyond the raw fd:
// *packet.Conn (in the Go runtime's poller) or *rawPacketConn (outside
// it).
type packetConn interface {
	SyscallConn() (syscall.RawConn, error)
	Stats() (*packet.Stats, error)
	SetBPF(filter []bpf.RawInstruction) error
	SetReadDeadline(t time.Time) error
	Close() error
}

// rawPacketConn is an AF_PACKET socket the Go runtime's poller never sees,
// for the ports that wait in poll(2) themselves (OpenSplit's and the
// AF_XDP port's AF_PACKET side). A socket in the runtime's epoll set has
// the poller on its wait queue, so every frame queued to it (and every
// frame sent through it, once freed) wakes the runtime's netpoller thread,
// which finds no goroutine waiting on it and goes back to sleep: at 30k
// frames/s that was about a fifth of drlb's CPU (runtime.netpoll,
// findRunnable, finish_task_switch in a profile). Outside the epoll set
// nothing sleeps on the queue but our own poll(2).
//
// The fd stays valid while a call uses it: Close waits for them (the
// read lock), and Read and Write wait in poll(2) at most pollWaitMillis
// at a time.
type rawPacketConn struct {
	mu       sync.RWMutex
	fd       int
	closed   atomic.Bool
	deadline atomic.Int64 // unix nanoseconds of the read deadline, 0: none
}

// listenRaw opens an AF_PACKET socket bound to ifindex with protocol 0
// (so it queues nothing yet) and filter attached, as packet.Listen does.
func listenRaw(ifindex int, filter []bpf.RawInstruction) (*rawPacketConn, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	c := &rawPacketConn{fd: fd}
	if len(filter) > 0 {
		if err := c.SetBPF(filter); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: 0, Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	return c, nil
}

func (c *rawPacketConn) SyscallConn() (syscall.RawConn, error) { return c, nil }

// Control runs f with the fd.
func (c *rawPacketConn) Control(f func(fd uintptr)) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return ErrClosed
	}
	f(uintptr(c.fd))
	return nil
}

// Read calls f until it returns true, waiting in poll(2) for input
// between calls, until the read deadline.
func (c *rawPacketConn) Read(f func(fd uintptr) bool) error {
	return c.wait(f, unix.POLLIN, true)
}

// Write calls f until it returns true, waiting in poll(2) for room
// between calls.
func (c *rawPacketConn) Write(f func(fd uintptr) bool) error {
	return c.wait(f, unix.POLLOUT, false)
}

func (c *rawPacketConn) wait(f func(fd uintptr) bool, events int16, deadline bool) error {
	for {
		done, err := c.once(f, events, deadline)
		if done || err != nil {
			return err
		}
	}
}

// once is one call of f and, if it wants more, one poll.
func (c *rawPacketConn) once(f func(fd uintptr) bool, events int16, deadline bool) (bool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return false, ErrClosed
	}
	if f(uintptr(c.fd)) {
		return true, nil
	}
	wait := pollWaitMillis
	if d := c.deadline.Load(); deadline && d != 0 {
		left := time.Until(time.Unix(0, d))
		if left <= 0 {
			return false, os.ErrDeadlineExceeded
		}
		wait = min(wait, int(left/time.Millisecond)+1)
	}
	pfd := []unix.PollFd{{Fd: int32(c.fd), Events: events}}
	if _, err := unix.Poll(pfd, wait); err != nil && err != unix.EINTR {
		return false, os.NewSyscallError("poll", err)
	}
	return false, nil
}

// Stats reads (and so resets) the kernel's PACKET_STATISTICS.
func (c *rawPacketConn) Stats() (*packet.Stats, error) {
	var s *unix.TpacketStats
	err := c.Control(func(fd uintptr) {
		var err error
		s, err = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			s = nil
		}
	})
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, os.NewSyscallError("getsockopt", unix.EINVAL)
	}
	return &packet.Stats{Packets: s.Packets, Drops: s.Drops}, nil
}

// SetBPF attaches (replaces) the socket filter.
func (c *rawPacketConn) SetBPF(filter []bpf.RawInstruction) error {
	prog := make([]unix.SockFilter, len(filter))
	for i, r := range filter {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		fp := unix.SockFprog{Len: uint16(len(prog))}
		if len(prog) > 0 {
			fp.Filter = &prog[0]
		}
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// SetReadDeadline bounds Read (the zero time: no bound).
func (c *rawPacketConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		c.deadline.Store(0)
	} else {
		c.deadline.Store(t.UnixNano())
	}
	return nil
}

// Close closes the fd once no call uses it.
func (c *rawPacketConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return unix.Close(c.fd)
}
