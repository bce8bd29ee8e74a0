package testbed

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/drlb/drlb/internal/testutil"

	"github.com/drlb/drlb/internal/userns"
)

// newTestLab builds a lab that is torn down when the test ends, failed or not.
func newTestLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	testutil.NeedRoot(t)
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

func TestNewWithoutRoot(t *testing.T) {
	if os.Geteuid() == 0 && userns.Initial() {
		t.Skip("running as root: the not-root path cannot be seen")
	}
	_, err := New(t.Context(), Options{})
	if !errors.Is(err, ErrNotRoot) || !strings.Contains(err.Error(), "root") {
		t.Errorf("New as non-root = %v, want ErrNotRoot saying root is needed", err)
	}
}
