package testutil

import (
	"os/exec"
	"strings"
	"testing"
)

// NeedTool returns the path of the first of names found in $PATH (e.g.
// "chromium", the browser a test renders a page in). Without any of them
// it skips the test saying what is missing, except under CI=true, where it
// fails it instead: CI installs every tool the tests use (.ci/run), so a
// missing one there is a broken CI, not a reason to skip.
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	path, missing := findTool(exec.LookPath, names)
	need(t, "a program (.ci/run installs it)", missing, inCI())
	return path
}

// findTool looks names up with look and returns the first found, or what
// is missing.
func findTool(look func(string) (string, error), names []string) (path, missing string) {
	for _, n := range names {
		if p, err := look(n); err == nil {
			return p, ""
		}
	}
	return "", "none of " + strings.Join(names, ", ") + " in $PATH"
}
