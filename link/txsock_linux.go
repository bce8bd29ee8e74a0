package link

import (
	"golang.org/x/sys/unix"
)

// openTxSocket opens the port's send-only socket: AF_PACKET, bound to the
// interface with protocol 0, so it receives nothing, with the same
// virtio-net header, qdisc bypass and send buffer as the receiving socket.
//
// Why a second socket: the receiving socket sits in the Go runtime's
// epoll set (mdlayher/packet registers it), and every frame sent through
// it, once freed by the driver, calls the socket's write-space callback,
// which wakes whatever waits on the socket: the runtime's netpoller
// thread, woken up (and put back to sleep) once per forwarded frame for
// nothing. A profile at 30k frames/s put about a third of drlb's CPU in
// those wake-ups (sock_def_write_space, runtime.netpoll,
// finish_task_switch). This socket is in no epoll set, so nothing sleeps
// on it and freeing its frames wakes nobody; WriteBatch waits in poll(2)
// itself when its buffer is full.
func openTxSocket(ifindex int, cfg Config) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	opts := []struct{ level, name, value int }{
		{unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1},
	}
	if cfg.QdiscBypass {
		opts = append(opts, struct{ level, name, value int }{unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1})
	}
	if cfg.WriteBuffer > 0 {
		opts = append(opts, struct{ level, name, value int }{unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.WriteBuffer})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: 0, Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// sendAll sends t's batch through the send-only socket fd, waiting in
// poll(2) while its buffer is full, pollWaitMillis at a time so that
// Close is seen.
func (p *afpacket) sendAll(t *txRing, fd int) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for !t.send(uintptr(fd)) {
		if p.closed.Load() {
			return ErrClosed
		}
		if _, err := unix.Poll(pfd, pollWaitMillis); err != nil && err != unix.EINTR {
			return err
		}
	}
	return nil
}
