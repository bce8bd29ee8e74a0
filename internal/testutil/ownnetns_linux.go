package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// inOwnNetNS is set in the environment of the test binary MainInOwnNetNS
// runs again in a network namespace of its own (and of the fuzz workers
// that binary starts, which must not start a third), to the parent's
// namespace (netnsID), which the child checks it is not in.
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
	if parent := os.Getenv(inOwnNetNS); parent != "" {
		// The test binary run again (or one of its fuzz workers): only
		// where the namespace really is another than the parent's and
		// the host's, never configure the host's lo.
		if err := checkOwnNetNS(parent); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: %s=%s: %v\n", inOwnNetNS, parent, err)
			return 1
		}
		if err := loopbackUp(); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: the tests' own network namespace: %v\n", err)
			return 1
		}
		ownNetNSMissing = ""
		return m.Run()
	}
	self, err := netnsID("/proc/self/ns/net")
	if err != nil {
		ownNetNSMissing = fmt.Sprintf("this process's network namespace: %v", err)
		return m.Run()
	}
	// Pdeathsig fires when the thread that forked the child ends: this
	// one, kept for good.
	runtime.LockOSThread()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), inOwnNetNS+"="+self)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	// The child handles the signals, with its cleanups (a lab's
	// CloseOnSignal, the fuzz coordinator's stop): Ctrl-C reaches it
	// from the terminal, and the rest is passed on. The parent waits.
	signal.Ignore(os.Interrupt)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		signal.Reset()
		// The namespace could not be made (no user namespaces here).
		ownNetNSMissing = fmt.Sprintf("a network namespace of the tests' own could not be made: %v", err)
		return m.Run()
	}
	go func() {
		for sig := range sigs {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.Exited():
		return exit.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "testutil: the tests in their own network namespace: %v\n", err)
	return 1
}

// netnsID identifies the network namespace at path (a /proc/.../ns/net
// link) by device and inode.
func netnsID(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}

// checkOwnNetNS fails unless this process's network namespace is one
// MainInOwnNetNS made: another than the parent's (parent: its netnsID),
// with no link but lo, as a new namespace has. An environment that merely
// claims it (the variable set by hand) must not get the host's lo
// configured; /proc/1/ns/net, the host's, may not be readable to compare.
func checkOwnNetNS(parent string) error {
	here, err := netnsID("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	if here == parent {
		return errors.New("this process runs in the namespace of the one that set it, not one of its own")
	}
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if name := l.Attrs().Name; name != "lo" {
			return fmt.Errorf("this network namespace has link %s: not one the tests made", name)
		}
	}
	return nil
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
