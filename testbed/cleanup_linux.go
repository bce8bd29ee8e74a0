package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cleanup removes every namespace under /var/run/netns whose name starts
// with prefix, e.g. the leftovers of a lab named prefix that was killed
// before it could Close. Pass a lab name followed by "-" to match exactly
// one lab. An empty prefix is refused. Links inside those namespaces go with
// them once nothing else holds the namespace.
func Cleanup(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("%w: Cleanup needs a non-empty prefix (refusing to remove every namespace)", ErrOptions)
	}
	return cleanupMatching(false, func(name string) bool { return strings.HasPrefix(name, prefix) })
}

// CleanupStale removes the namespaces of default-named labs whose process
// no longer exists (a test binary killed mid-run, whose cleanups never
// ran), after killing the processes still running in them (a director,
// trafgen, BIRD: nothing else would stop them). Labs of running
// processes, this one included, are left alone.
func CleanupStale() error {
	return cleanupMatching(true, func(name string) bool {
		m := defaultNameRE.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 {
			return false
		}
		return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
	})
}

// cleanupMatching deletes the namespaces whose names match, with kill
// first sending SIGKILL to the processes in each.
func cleanupMatching(kill bool, match func(string) bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: removing network namespaces needs root", ErrNotRoot)
	}
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", netnsDir, err)
	}
	var errs []error
	for _, e := range entries {
		if !match(e.Name()) {
			continue
		}
		if kill {
			pids, err := PIDsIn(e.Name())
			errs = append(errs, err)
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		errs = append(errs, deleteNamedNS(e.Name()))
	}
	return errors.Join(errs...)
}

// PIDsIn lists the processes whose network namespace is the named one
// (under /var/run/netns), as `ip netns pids` does: the same device and
// inode as the bind mount. This process is never listed.
func PIDsIn(ns string) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join(netnsDir, ns), &want); err != nil {
		return nil, fmt.Errorf("network namespace %q: %w", ns, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil {
			continue // gone, or a kernel thread
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
