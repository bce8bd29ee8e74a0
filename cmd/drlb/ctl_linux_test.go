package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// TestCtlAsNobody: the control socket is root's. A user who is not root
// gets a plain "permission denied" and can neither read the table nor
// change it: not through the socket's mode (0600, root's, also at a path
// given with -ctl), and not if that mode were loosened either (the
// director asks the kernel who connected).
func TestCtlAsNobody(t *testing.T) {
	testutil.NeedRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, dir := testutil.CopyForNobody(t, exe)
	sock := filepath.Join(dir, "other", "ctl.sock") // not the default path: -ctl
	ed := newCtlEditor(t)
	serveCtl(t, sock, ed)
	if err := os.Chmod(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"ctl", "-s", sock}, args...)...)
		cmd.Env = append(os.Environ(), asDrlb+"=1")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: testutil.Nobody}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatalf("drlb ctl %v as nobody: %v\n%s", args, err, out)
		return "", 0
	}
	commands := [][]string{
		{"-L", "-n"},
		{"-S", "-n"},
		{"-Z"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.12", "-w", "1"},
		{"-C"},
		{"--reload"},
		{"list"},
	}
	for _, mode := range []os.FileMode{0o600, 0o666} {
		if err := os.Chmod(sock, mode); err != nil {
			t.Fatal(err)
		}
		for _, args := range commands {
			out, code := asNobody(args...)
			if args[0] == "-L" {
				t.Logf("socket mode %v: drlb ctl -L -n as nobody: exit %d: %s", mode, code, out)
			}
			if code != exitFailure || !strings.Contains(out, "permission denied") || strings.Contains(out, "198.18.0.11") {
				t.Errorf("socket mode %v: drlb ctl %v as nobody: exit %d, output %q; want exit 1 saying permission denied and showing nothing",
					mode, args, code, out)
			}
		}
	}
	if applied, zeroed := ed.counts(); applied != 0 || zeroed != 0 {
		t.Fatalf("nobody changed the director: %d applies, %d zeroings", applied, zeroed)
	}
	// Root itself is served.
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "ctl", "-s", sock, "-L", "-n")
	cmd.Env = append(os.Environ(), asDrlb+"=1")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "198.18.0.11:80") {
		t.Fatalf("drlb ctl -L -n as root: %v\n%s", err, out)
	}
}
