package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/drlb/drlb/internal/osthread"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces are bind-mounted (as by `ip netns add`).
const netnsDir = "/var/run/netns"

// createNamedNS creates the namespace name under /var/run/netns and returns
// an open handle on it, without moving any thread of the caller.
func createNamedNS(name string) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	// netns.NewNamed moves its thread into the new namespace: a thread of
	// its own, never the main one, that dies afterwards.
	osthread.Run(func() {
		ns, err := netns.NewNamed(name)
		ch <- result{ns, err}
	})
	r := <-ch
	switch {
	case r.err == nil:
		return r.ns, nil
	case errors.Is(r.err, unix.EPERM) || errors.Is(r.err, unix.EACCES):
		return netns.None(), fmt.Errorf("%w: creating network namespace %q: %v", ErrNotRoot, name, r.err)
	case errors.Is(r.err, unix.EEXIST):
		return netns.None(), fmt.Errorf("network namespace %q already exists (left by a crashed run? testbed.Cleanup removes it): %w", name, r.err)
	default:
		// NewNamed may leave its empty mount-point file behind on failure.
		os.Remove(filepath.Join(netnsDir, name))
		return netns.None(), fmt.Errorf("creating network namespace %q: %w", name, r.err)
	}
}

// deleteNamedNS removes the name; the namespace itself disappears, with its
// links, once nothing holds it any more.
func deleteNamedNS(name string) error {
	err := netns.DeleteNamed(name)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point (a half-made name): just remove the file.
		if rerr := os.Remove(filepath.Join(netnsDir, name)); rerr == nil || errors.Is(rerr, os.ErrNotExist) {
			return nil
		}
	}
	return fmt.Errorf("deleting network namespace %q: %w", name, err)
}

// sysctl is one /proc/sys setting, path relative to /proc/sys.
type sysctl struct {
	path, value string
	// optional settings may not exist on every kernel (bridge netfilter).
	optional bool
}

// writeSysctls writes settings from the calling thread; call it inside Do
// so that /proc/sys/net shows the target namespace.
func writeSysctls(settings []sysctl) error {
	for _, s := range settings {
		err := os.WriteFile(filepath.Join("/proc/sys", s.path), []byte(s.value), 0)
		if err != nil && !(s.optional && errors.Is(err, os.ErrNotExist)) {
			return fmt.Errorf("sysctl %s=%s: %w", s.path, s.value, err)
		}
	}
	return nil
}
