package link

import (
	"errors"
	"os"
	"syscall"
)

// Error is an error of a Port operation: it names the interface and the
// step that failed (a socket option, a system call). errors.Is matches both
// the underlying error (for example syscall.EPERM) and the package sentinel
// it maps to (ErrNotPermitted, ErrNoInterface, ErrBadConfig).
type Error struct {
	Interface string
	Op        string // "setsockopt PACKET_VNET_HDR", "bind", "read", ...
	Err       error
	sentinel  error
}

func (e *Error) Error() string {
	s := "link: " + e.Interface + ": "
	if e.Op != "" {
		s += e.Op + ": "
	}
	return s + e.Err.Error()
}

// Unwrap returns the underlying error and the sentinel, for errors.Is.
func (e *Error) Unwrap() []error {
	if e.sentinel == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.sentinel}
}

// newError builds an *Error, reducing err to its errno when it is wrapped in
// net.OpError/os.SyscallError (which would repeat the operation in the
// message) and attaching ErrNotPermitted to EPERM and EACCES.
func newError(ifname, op string, err error) *Error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		if op == "" {
			op = se.Syscall
		}
		err = se.Err
	}
	e := &Error{Interface: ifname, Op: op, Err: err}
	switch {
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		e.sentinel = ErrNotPermitted
	case errors.Is(err, syscall.ENETDOWN):
		e.sentinel = ErrLinkDown
	}
	return e
}

var errTooLong = errors.New("frame longer than MaxFrame")
