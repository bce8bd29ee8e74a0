package main

import (
	"strings"
	"testing"
)

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
