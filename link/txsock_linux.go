package link

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// openTxSocket opens the port's send-only socket: an AF_PACKET socket
// outside the Go runtime's poller (listenRaw, no filter), bound with
// protocol 0 so it receives nothing, with the virtio-net header and the
// Config's qdisc bypass and send buffer. The receiving socket sends
// nothing, so those two options are set here only.
//
// Why a second socket: the receiving socket sits in the Go runtime's
// epoll set (mdlayher/packet registers it, unless Config.outsidePoller),
// and every frame sent through it, once freed by the driver, calls the
// socket's write-space callback, which wakes whatever waits on the
// socket: the runtime's netpoller thread, woken up (and put back to
// sleep) once per forwarded frame for nothing. A profile at 30k frames/s
// put about a third of drlb's CPU in those wake-ups (sock_def_write_space,
// runtime.netpoll, finish_task_switch). This socket is in no epoll set,
// so nothing sleeps on it and freeing its frames wakes nobody; its Write
// waits in poll(2) itself when the buffer is full.
func openTxSocket(ifindex int, cfg Config) (*rawPacketConn, error) {
	c, err := listenRaw(ifindex, nil)
	if err != nil {
		return nil, err
	}
	opts := []sockopt{
		// The frame's checksum and GSO state goes out in front of it.
		{unix.SOL_PACKET, unix.PACKET_VNET_HDR, "PACKET_VNET_HDR", 1},
	}
	if cfg.QdiscBypass {
		opts = append(opts, sockopt{unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, "PACKET_QDISC_BYPASS", 1})
	}
	if cfg.WriteBuffer > 0 {
		opts = append(opts, sockopt{unix.SOL_SOCKET, unix.SO_SNDBUF, "SO_SNDBUF", cfg.WriteBuffer})
	}
	for _, o := range opts {
		if err := setsockoptInt(c, o.level, o.name, o.value); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("setsockopt %s: %w", o.label, err)
		}
	}
	return c, nil
}
