package ethtool

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// value is struct ethtool_value: a command and one 32-bit answer.
type value struct{ cmd, data uint32 }

// ifreqData is struct ifreq with ifr_data as a real pointer, so the garbage
// collector keeps the ethtool_value alive across the ioctl (the same trick
// as x/sys/unix's unexported ifreqData).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(unsafe.Pointer(nil))]byte // rest of the 24-byte union
}

// Get reports whether feature f is on for iface in the calling thread's
// network namespace.
func Get(iface string, f Feature) (bool, error) {
	if err := checkArgs(iface, f, "get"); err != nil {
		return false, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, &Error{Interface: iface, Op: "get", Feature: f, Err: fmt.Errorf("socket: %w", err)}
	}
	defer unix.Close(fd)
	on, err := ioctl(fd, iface, features[f].get, 0)
	if err != nil {
		return false, newError(iface, "get", f, err)
	}
	return on, nil
}

// Set switches feature f on or off for iface in the calling thread's network
// namespace (CAP_NET_ADMIN there is needed), then reads it back: when the
// kernel kept the old value, as it does for a feature whose dependency is off,
// the error wraps ErrKept.
func Set(iface string, f Feature, on bool) error {
	op := setOp(on)
	if err := checkArgs(iface, f, op); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &Error{Interface: iface, Op: op, Feature: f, Err: fmt.Errorf("socket: %w", err)}
	}
	defer unix.Close(fd)
	var data uint32
	if on {
		data = 1
	}
	if _, err := ioctl(fd, iface, features[f].set, data); err != nil {
		return newError(iface, op, f, err)
	}
	got, err := ioctl(fd, iface, features[f].get, 0)
	if err != nil {
		return newError(iface, "get after "+op, f, err)
	}
	if got != on {
		return &Error{Interface: iface, Op: op, Feature: f, Err: ErrKept}
	}
	return nil
}

// ioctl runs one SIOCETHTOOL command carrying an ethtool_value.
func ioctl(fd int, iface string, cmd, data uint32) (bool, error) {
	v := &value{cmd: cmd, data: data}
	if err := ethtoolIoctl(fd, iface, unsafe.Pointer(v)); err != nil {
		return false, err
	}
	return v.data != 0, nil
}

// ethtoolIoctl runs the SIOCETHTOOL command whose struct data points to
// (its first field is the command).
func ethtoolIoctl(fd int, iface string, data unsafe.Pointer) error {
	req := &ifreqData{data: data}
	copy(req.name[:], iface)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(req))); errno != 0 {
		return errno
	}
	return nil
}

// newError attaches the package sentinel that matches errno.
func newError(iface, op string, f Feature, err error) *Error {
	return &Error{Interface: iface, Op: op, Feature: f, Err: err, sentinel: sentinelOf(err)}
}

// sentinelOf is the package sentinel that matches errno, or nil.
func sentinelOf(err error) error {
	switch {
	case errors.Is(err, unix.ENODEV):
		return ErrNoInterface
	case errors.Is(err, unix.EOPNOTSUPP):
		return ErrNotSupported
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return ErrNotPermitted
	}
	return nil
}
