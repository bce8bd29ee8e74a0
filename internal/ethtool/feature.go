package ethtool

import (
	"errors"
	"fmt"
)

// Feature is one on/off offload that the legacy ethtool ioctls know.
type Feature uint8

// Features, named in String as `ethtool -k` shows them.
const (
	RxChecksum Feature = iota + 1 // rx-checksumming (ETHTOOL_GRXCSUM/SRXCSUM)
	TxChecksum                    // tx-checksumming (ETHTOOL_GTXCSUM/STXCSUM)
	TSO                           // tcp-segmentation-offload (ETHTOOL_GTSO/STSO)
	GSO                           // generic-segmentation-offload (ETHTOOL_GGSO/SGSO)
	GRO                           // generic-receive-offload (ETHTOOL_GGRO/SGRO)
)

// Features lists every Feature, in `ethtool -k` order.
var Features = [...]Feature{RxChecksum, TxChecksum, TSO, GSO, GRO}

// features maps each Feature to its names and its get/set ioctl commands
// (linux/ethtool.h; the numbers are ABI and never change).
var features = [...]struct {
	long, short string
	get, set    uint32
}{
	RxChecksum: {"rx-checksumming", "rx", 0x14, 0x15},
	TxChecksum: {"tx-checksumming", "tx", 0x16, 0x17},
	TSO:        {"tcp-segmentation-offload", "tso", 0x1e, 0x1f},
	GSO:        {"generic-segmentation-offload", "gso", 0x23, 0x24},
	GRO:        {"generic-receive-offload", "gro", 0x2b, 0x2c},
}

// Sentinel errors; check them with errors.Is.
var (
	// ErrUnknownFeature: a Feature value or name this package does not know.
	ErrUnknownFeature = errors.New("unknown offload feature")
	// ErrInterfaceName: an interface name that is empty, too long or holds a NUL.
	ErrInterfaceName = errors.New("bad interface name")
	// ErrNoInterface: no interface of that name in the caller's namespace (ENODEV).
	ErrNoInterface = errors.New("no such interface")
	// ErrNotSupported: the device cannot report or change this offload (EOPNOTSUPP).
	ErrNotSupported = errors.New("offload not supported by the device")
	// ErrNotPermitted: changing offloads needs CAP_NET_ADMIN (EPERM).
	ErrNotPermitted = errors.New("not permitted")
	// ErrKept: Set was accepted but the kernel kept the old value, usually
	// because a feature it depends on is off (TSO needs tx-checksumming).
	ErrKept = errors.New("the kernel kept the old setting")
	// ErrUnsupported: ethtool ioctls exist only on Linux.
	ErrUnsupported = errors.New("ethtool offloads need Linux")
)

// String returns the name `ethtool -k` prints for f.
func (f Feature) String() string {
	if !f.valid() {
		return fmt.Sprintf("Feature(%d)", uint8(f))
	}
	return features[f].long
}

func (f Feature) valid() bool { return f >= RxChecksum && int(f) < len(features) }

// ParseFeature accepts a feature's `ethtool -k` name ("generic-receive-offload")
// or its `ethtool -K` short name ("gro").
func ParseFeature(s string) (Feature, error) {
	for _, f := range Features {
		if s == features[f].long || s == features[f].short {
			return f, nil
		}
	}
	return 0, fmt.Errorf("ethtool: feature %q: %w (want one of rx tx tso gso gro, or their ethtool -k names)", s, ErrUnknownFeature)
}

// Error is a failed Get or Set: it names the interface, the operation and
// the feature. errors.Is matches the errno and the package sentinel.
type Error struct {
	Interface string
	Op        string // "get" or "set on" / "set off"
	Feature   Feature
	Err       error
	sentinel  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("ethtool: %s: %s %s: %v", e.Interface, e.Op, e.Feature, e.Err)
}

// Unwrap returns the underlying error and the sentinel, for errors.Is.
func (e *Error) Unwrap() []error {
	if e.sentinel == nil || e.sentinel == e.Err {
		return []error{e.Err}
	}
	return []error{e.Err, e.sentinel}
}

// checkArgs validates what needs no kernel: the interface name and the feature.
func checkArgs(iface string, f Feature, op string) error {
	if !f.valid() {
		return &Error{Interface: iface, Op: op, Feature: f, Err: ErrUnknownFeature}
	}
	if iface == "" || len(iface) >= 16 /* IFNAMSIZ, with the NUL */ {
		return &Error{Interface: iface, Op: op, Feature: f, Err: fmt.Errorf("%w: %q is %d bytes, want 1..15", ErrInterfaceName, iface, len(iface))}
	}
	for i := 0; i < len(iface); i++ {
		if iface[i] == 0 || iface[i] == '/' {
			return &Error{Interface: iface, Op: op, Feature: f, Err: fmt.Errorf("%w: %q holds %q", ErrInterfaceName, iface, iface[i])}
		}
	}
	return nil
}

func setOp(on bool) string {
	if on {
		return "set on"
	}
	return "set off"
}
