//go:build !linux

package control

import "net"

// peerUID is Linux's SO_PEERCRED; elsewhere the socket's mode alone keeps
// others out (the director runs only on Linux).
func peerUID(c net.Conn) (int, bool) { return 0, false }
