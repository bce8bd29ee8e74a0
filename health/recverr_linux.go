package health

import (
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// recvICMPErrors is the net.Dialer Control of udp and dns probes: it sets
// IP_RECVERR (IPV6_RECVERR), as keepalived's UDP_CHECK does. Without it a
// connected UDP socket hears only the ICMP errors Linux counts as hard
// (port or protocol unreachable, administratively filtered), never host or
// network unreachable: the answer a router, or the director's own failed
// ARP/NDP, gives for a real server that is off, which the check would
// then take for silence, and pass.
func recvICMPErrors(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("health: %s socket: IP_RECVERR: %w", network, serr)
	}
	return nil
}
