//go:build !linux

package health

import "syscall"

// recvICMPErrors sets nothing here: IP_RECVERR is Linux's (see
// recverr_linux.go).
func recvICMPErrors(string, string, syscall.RawConn) error { return nil }
