package realserver

import "errors"

// Sentinel errors; check them with errors.Is.
var (
	// ErrConfig: the VIP or interface given is unusable.
	ErrConfig = errors.New("invalid real-server configuration")
	// ErrState: the state file is unreadable or belongs to another VIP.
	ErrState = errors.New("bad real-server state file")
	// ErrNoSysctl: a sysctl does not exist (often: no such interface).
	ErrNoSysctl = errors.New("no such sysctl")
)
