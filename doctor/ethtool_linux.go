package doctor

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool "get" commands; each answers one on/off offload.
var ethtoolGets = []struct {
	name string
	cmd  uint32
}{
	{"rx-checksumming", 0x14},              // ETHTOOL_GRXCSUM
	{"tx-checksumming", 0x16},              // ETHTOOL_GTXCSUM
	{"tcp-segmentation-offload", 0x1e},     // ETHTOOL_GTSO
	{"generic-segmentation-offload", 0x23}, // ETHTOOL_GGSO
	{"generic-receive-offload", 0x2b},      // ETHTOOL_GGRO
}

type ethtoolValue struct{ cmd, data uint32 }

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data uintptr
	_    [16]byte // the rest of struct ifreq's union
}

// Offloads asks the kernel (SIOCETHTOOL) which offloads are on, as
// `ethtool -k IFACE` shows them.
func (System) Offloads(name string) (map[string]bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	out := map[string]bool{}
	for _, g := range ethtoolGets {
		v := ethtoolValue{cmd: g.cmd}
		var req ifreqData
		copy(req.name[:], name)
		req.data = uintptr(unsafe.Pointer(&v))
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req))); errno != 0 {
			if errno == unix.EOPNOTSUPP {
				continue
			}
			return nil, fmt.Errorf("ethtool %s on %s: %w", g.name, name, errno)
		}
		out[g.name] = v.data != 0
	}
	return out, nil
}
