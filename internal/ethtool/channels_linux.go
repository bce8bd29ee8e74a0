package ethtool

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// channels is struct ethtool_channels (ETHTOOL_GCHANNELS).
type channels struct {
	cmd                                    uint32
	maxRx, maxTx, maxOther, maxCombined    uint32
	rxCount, txCount, otherCount, combined uint32
}

const ethtoolGChannels = 0x3c

// RxQueues reports how many receive queues iface uses now, in the calling
// thread's network namespace: its receive-only and combined channels, as
// `ethtool -l` shows them (a NIC allocates more than it uses; an AF_XDP
// socket binds only to a queue in use). The error wraps ErrNotSupported
// for a driver that does not report channels.
func RxQueues(iface string) (int, error) {
	if err := checkArgs(iface, RxChecksum, "get channels"); err != nil {
		var e *Error
		if errors.As(err, &e) {
			err = e.Err
		}
		return 0, fmt.Errorf("ethtool: %s: get channels: %w", iface, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("ethtool: %s: get channels: socket: %w", iface, err)
	}
	defer unix.Close(fd)
	c := &channels{cmd: ethtoolGChannels}
	if err := ethtoolIoctl(fd, iface, unsafe.Pointer(c)); err != nil {
		if s := sentinelOf(err); s != nil {
			return 0, fmt.Errorf("ethtool: %s: get channels: %w (%w)", iface, err, s)
		}
		return 0, fmt.Errorf("ethtool: %s: get channels: %w", iface, err)
	}
	return int(c.rxCount + c.combined), nil
}
