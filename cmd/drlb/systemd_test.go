package main

import (
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifySocket listens where NOTIFY_SOCKET points for the test and returns
// what systemd would have been told so far.
func notifySocket(t *testing.T) func() []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return func() []string {
		var got []string
		buf := make([]byte, 4096)
		for {
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := c.Read(buf)
			if err != nil {
				return got
			}
			first, _, _ := strings.Cut(string(buf[:n]), "\n")
			got = append(got, first)
		}
	}
}

// TestSDNotifierPhases: READY=1 is sent once the director is ready and
// after each reload then, never for a reload while it starts (systemd
// would take the start as done) or while it stops (it would undo
// STOPPING=1).
func TestSDNotifierPhases(t *testing.T) {
	read := notifySocket(t)
	sd := newSDNotifier(slog.New(slog.DiscardHandler))
	step := func(what string, f func(), want ...string) {
		t.Helper()
		f()
		if got := read(); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: systemd told %q, want %q", what, got, want)
		}
	}
	step("a reload while starting", func() { sd.reloading(); sd.reloaded(nil) }, "STATUS=starting; configuration reloaded")
	step("ready", sd.ready, "READY=1")
	step("ready again", sd.ready)
	step("a reload", func() { sd.reloading(); sd.reloaded(nil) }, "RELOADING=1", "READY=1")
	step("a refused reload", func() { sd.reloading(); sd.reloaded(errors.New("bad\nline")) }, "RELOADING=1", "READY=1")
	step("stopping", sd.stopping, "STOPPING=1")
	step("a reload while stopping", func() { sd.reloading(); sd.reloaded(nil) })
	step("ready while stopping", sd.ready)
}
