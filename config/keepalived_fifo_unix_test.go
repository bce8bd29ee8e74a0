//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKeepalivedIncludeRefusesFIFO: an include pattern that matches a
// FIFO (keepalived's notify_fifo kept beside conf.d, say) is refused,
// naming it, instead of blocking the reader (and a reload) for good; a
// device such as /dev/zero likewise.
func TestKeepalivedIncludeRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "conf.d", "notify_fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	for _, tc := range []struct{ include, name string }{{"conf.d/*", fifo}, {"/dev/zero", "/dev/zero"}} {
		main := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(main, []byte("include "+tc.include+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := Load(main); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("include %s: %v, want a refusal naming %s", tc.include, err, tc.name)
			}
		case <-time.After(30 * time.Second): // a hang guard, not a speed check
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("include %s: Load still blocked after 30 s", tc.include)
		}
	}
}
