package lab

import (
	"os"
	"testing"
)

// requireRoot skips a test that needs root, but fails it under CI=true,
// where every test must really run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (network namespaces) and CI=true: it must run")
	}
	t.Skip("needs root to build network namespaces")
}

// newTestLab builds a lab that is torn down when the test ends, failed or not.
func newTestLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	requireRoot(t)
	l, err := New(t.Context(), opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}
