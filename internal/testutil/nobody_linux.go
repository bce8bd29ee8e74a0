package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Nobody is the credential of the unprivileged user tests run commands as
// (uid and gid 65534, no supplementary groups).
var Nobody = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}

// CopyForNobody copies the executable at src into a fresh directory that
// the unprivileged user may enter (t.TempDir's are root's, 0700) and
// returns the copy's path and its directory: a test running as root can
// then run it as Nobody.
func CopyForNobody(t testing.TB, src string) (bin, dir string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	dir = t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // both made by TempDir, 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("testutil: %v", err)
		}
	}
	bin = filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return bin, dir
}
