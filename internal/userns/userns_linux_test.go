package userns_test

// An external test package: testutil imports userns, and its Need is
// what turns a skip into a failure under CI=true.

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/internal/userns"
)

// TestInitial: this test binary (not in a user namespace of its own) is
// in the initial one; the same binary run again in a new user namespace,
// mapped to root there, is not.
func TestInitial(t *testing.T) {
	if os.Getenv("USERNS_TEST_CHILD") == "1" {
		if userns.Initial() {
			t.Fatal("Initial() in a new user namespace")
		}
		return
	}
	if !userns.Initial() {
		testutil.Need(t, "the host's user namespace", "this test binary already runs in a user namespace of its own")
	}
	cmd := exec.Command("/proc/self/exe", "-test.run", "^TestInitial$")
	cmd.Env = append(os.Environ(), "USERNS_TEST_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}}
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(err.Error(), "operation not permitted") {
		testutil.Need(t, "user namespaces", err.Error())
	}
	if err != nil {
		t.Fatalf("in a new user namespace: %v\n%s", err, out)
	}
}
