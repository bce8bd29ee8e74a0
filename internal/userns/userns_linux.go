// Package userns tells whether this process runs in the host's user
// namespace. Root in another one (a rootless container, the namespace a
// test binary runs itself in: testutil.MainInOwnNetNS) holds capabilities
// only over what that namespace owns: not the host's network namespaces,
// not /run/netns. A check of the effective uid alone takes it for root.
package userns

import (
	"os"
	"strings"
)

// Initial reports whether this process is in the initial user namespace:
// its uid_map maps the whole uid range onto itself.
func Initial() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return true // no user namespaces in this kernel: only the initial one
	}
	return strings.Join(strings.Fields(string(b)), " ") == "0 0 4294967295"
}
