package control

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerUID asks the kernel which user is at the other end of a Unix socket
// connection (SO_PEERCRED); false for other connections. If the kernel
// cannot tell, the uid is -1: nobody's.
func peerUID(c net.Conn) (int, bool) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, true
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return -1, true
	}
	return int(cred.Uid), true
}
