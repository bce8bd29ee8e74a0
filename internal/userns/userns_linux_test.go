package userns

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestInitial: this test binary (not in a user namespace of its own) is
// in the initial one; the same binary run again in a new user namespace,
// mapped to root there, is not.
func TestInitial(t *testing.T) {
	if os.Getenv("USERNS_TEST_CHILD") == "1" {
		if Initial() {
			t.Fatal("Initial() in a new user namespace")
		}
		return
	}
	if !Initial() {
		t.Skip("this test binary already runs in a user namespace of its own")
	}
	cmd := exec.Command("/proc/self/exe", "-test.run", "^TestInitial$")
	cmd.Env = append(os.Environ(), "USERNS_TEST_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}}
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(err.Error(), "operation not permitted") {
		t.Skipf("no user namespaces here: %v", err)
	}
	if err != nil {
		t.Fatalf("in a new user namespace: %v\n%s", err, out)
	}
}
