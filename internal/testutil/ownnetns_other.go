//go:build !linux

package testutil

import "testing"

// MainInOwnNetNS runs the tests where they are: network namespaces are
// Linux's. Those that call NeedOwnNetNS skip.
func MainInOwnNetNS(m *testing.M) int { return m.Run() }

// NeedOwnNetNS skips the test (fails it under CI=true): network
// namespaces are Linux's.
func NeedOwnNetNS(t testing.TB) {
	t.Helper()
	need(t, "a network namespace of its own", "network namespaces need Linux", inCI())
}
