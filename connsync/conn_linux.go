package connsync

import (
	"net"

	"golang.org/x/sys/unix"
)

// readBuffer is c's SO_RCVBUF as asked for: Linux reports twice what was
// set (its bookkeeping overhead), capped at net.core.rmem_max first.
func readBuffer(c *net.UDPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
			n = v / 2
		}
	})
	return n
}
