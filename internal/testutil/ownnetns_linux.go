package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

// inOwnNetNS is set in the environment of the test binary MainInOwnNetNS
// runs again in a network namespace of its own (and of the fuzz workers
// that binary starts, which must not start a third).
const inOwnNetNS = "DRLB_TEST_OWN_NETNS"

// ownNetNSMissing is why this process is not in a network namespace of
// its own ("" when it is), for NeedOwnNetNS.
var ownNetNSMissing = "the package's TestMain does not call testutil.MainInOwnNetNS"

// MainInOwnNetNS runs a package's tests in a network namespace of their
// own, for tests that serve and dial on one host (a health check against
// a server of the test's, a BGP speaker and its peer, an HTTP handler and
// its client): their traffic then never touches the host's namespace,
// its loopback included. Call it from TestMain as
// os.Exit(testutil.MainInOwnNetNS(m)).
//
// It runs the test binary again, with the same arguments, in a new network
// namespace (as root; otherwise in a new user namespace too, where the
// kernel allows unprivileged ones), brings its lo up with LoopbackAddr on
// it, and returns the binary's exit code. Where no namespace can be made,
// the tests run here, and those that call NeedOwnNetNS skip saying why
// (or fail under CI=true).
func MainInOwnNetNS(m *testing.M) int {
	if os.Getenv(inOwnNetNS) == "1" {
		if err := loopbackUp(); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: the tests' own network namespace: %v\n", err)
			return 1
		}
		ownNetNSMissing = ""
		return m.Run()
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), inOwnNetNS+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.Exited():
		return exit.ExitCode()
	case errors.As(err, &exit):
		fmt.Fprintf(os.Stderr, "testutil: the tests in their own network namespace: %v\n", err)
		return 1
	}
	// The namespace could not be made (no user namespaces here).
	ownNetNSMissing = fmt.Sprintf("a network namespace of the tests' own could not be made: %v", err)
	return m.Run()
}

// loopbackUp brings this namespace's lo up with LoopbackAddr on it.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: LoopbackAddr.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	// Replace, not add: the fuzz workers of the binary run in its
	// namespace, where the address is already there.
	if err := netlink.AddrReplace(lo, addr); err != nil {
		return fmt.Errorf("%v on lo: %w", LoopbackAddr, err)
	}
	return nil
}

// NeedOwnNetNS lets the test go on only in the network namespace
// MainInOwnNetNS made for the package's tests; elsewhere it skips saying
// why, or fails under CI=true. A test that serves and dials LoopbackAddr
// calls it first.
func NeedOwnNetNS(t testing.TB) {
	t.Helper()
	need(t, "a network namespace of its own", ownNetNSMissing, inCI())
}
