package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestMainUsage: asked for, the help goes to stdout with exit 0; a usage
// error (no command, an unknown one) prints it to stderr with exit 2, and
// nothing to stdout.
func TestMainUsage(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		code      int
		helpOnOut bool
		stderrHas string
	}{
		{nil, exitUsage, false, "usage: drlb <command>"},
		{[]string{""}, exitUsage, false, `unknown command ""`},
		{[]string{"frobnicate"}, exitUsage, false, `unknown command "frobnicate"`},
		{[]string{"\u00e9\x00"}, exitUsage, false, "unknown command"},
		{[]string{"help"}, exitOK, true, ""},
		{[]string{"-h"}, exitOK, true, ""},
		{[]string{"--help"}, exitOK, true, ""},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		gotHelp := strings.Contains(stdout.String(), "usage: drlb <command>")
		if code != tc.code || gotHelp != tc.helpOnOut || (!tc.helpOnOut && stdout.Len() > 0) || !strings.Contains(stderr.String(), tc.stderrHas) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, help on stdout %v, stderr mentioning %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.helpOnOut, tc.stderrHas)
		}
	}
}

// TestNeedsLinux: off Linux, the commands that need AF_PACKET, netlink or
// namespaces refuse with one clear line; replay, schedule and ctl run.
func TestNeedsLinux(t *testing.T) {
	cmds := commands()
	for _, name := range []string{"run", "lab", "realserver", "doctor"} {
		err := needsLinux(cmds, name, "darwin")
		if err == nil || !strings.HasPrefix(err.Error(), "needs Linux (") {
			t.Errorf("%s on darwin: %v, want a needs-Linux error", name, err)
		}
		if err := needsLinux(cmds, name, "linux"); err != nil {
			t.Errorf("%s on linux: %v", name, err)
		}
	}
	for _, name := range []string{"replay", "schedule", "ctl"} {
		if err := needsLinux(cmds, name, "darwin"); err != nil {
			t.Errorf("%s on darwin: %v, want it to run", name, err)
		}
	}
	err := needsLinux(cmds, "run", "darwin")
	if want := "needs Linux (AF_PACKET); on darwin drlb runs check, ctl, replay, schedule"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

// TestEveryCommandUsage: each command's -h opens with its own "usage:
// drlb NAME" line, as an operator reading several of them expects
// (doctor printed Go's default "Usage of drlb doctor:").
func TestEveryCommandUsage(t *testing.T) {
	for name := range commands() {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{name, "-h"}, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if code != exitOK || !strings.HasPrefix(out, "usage: drlb "+name) {
			t.Errorf("drlb %s -h: exit %d, output starts %q; want exit 0 and %q first", name, code, out[:min(len(out), 60)], "usage: drlb "+name)
		}
	}
}
