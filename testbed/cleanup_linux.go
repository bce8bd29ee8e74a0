package testbed

import (
	"errors"
	"fmt"
	"os"
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
	return cleanupMatching(func(name string) bool { return strings.HasPrefix(name, prefix) })
}

// CleanupStale removes the namespaces of default-named labs whose process
// no longer exists (a test binary killed mid-run). Labs of running
// processes, this one included, are left alone.
func CleanupStale() error {
	return cleanupMatching(func(name string) bool {
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

func cleanupMatching(match func(string) bool) error {
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
		if match(e.Name()) {
			errs = append(errs, deleteNamedNS(e.Name()))
		}
	}
	return errors.Join(errs...)
}
