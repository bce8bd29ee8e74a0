package testutil

import (
	"fmt"
	"os"

	"github.com/drlb/drlb/internal/userns"
	"golang.org/x/sys/unix"
)

// neededCaps are what the namespace tests use: CAP_SYS_ADMIN to create and
// enter namespaces, CAP_NET_ADMIN to configure links in them, CAP_NET_RAW
// for AF_PACKET sockets.
var neededCaps = []struct {
	bit  uint
	name string
}{
	{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"},
	{unix.CAP_NET_RAW, "CAP_NET_RAW"},
	{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
}

// missing says what this process lacks to run a root-only test, or "".
func missing() string {
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Sprintf("not root (euid %d)", euid)
	}
	if !userns.Initial() {
		// MainInOwnNetNS's namespace when not root, a rootless container.
		return "root only inside a user namespace, not the host's"
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Sprintf("cannot read capabilities: %v", err)
	}
	for _, c := range neededCaps {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			return "root without " + c.name + " (a restricted container?)"
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Sprintf("no network namespaces in this kernel: %v", err)
	}
	return ""
}
