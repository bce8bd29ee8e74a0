package control

import "syscall"

// umask sets the process umask and returns the old one, so the socket is
// created with owner-only permissions from the start (no window where it
// is world-accessible before a chmod).
func umask(m int) int { return syscall.Umask(m) }
