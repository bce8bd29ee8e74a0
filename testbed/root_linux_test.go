package testbed

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
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
		// Root (as in CI) cannot see the not-root path: this test, run
		// again by nobody, does.
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin, dir := testutil.CopyForNobody(t, exe)
		cmd := exec.Command(bin, "-test.run", "^TestNewWithoutRoot$", "-test.v")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: testutil.Nobody}
		// Without testutil.MainInOwnNetNS's mark of this binary's own
		// namespace: nobody's binary makes one of its own, or none.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "DRLB_TEST_OWN_NETNS=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestNewWithoutRoot") {
			t.Fatalf("TestNewWithoutRoot as nobody: %v\n%s", err, out)
		}
		return
	}
	_, err := New(t.Context(), Options{})
	if !errors.Is(err, ErrNotRoot) || !strings.Contains(err.Error(), "root") {
		t.Errorf("New as non-root = %v, want ErrNotRoot saying root is needed", err)
	}
}
