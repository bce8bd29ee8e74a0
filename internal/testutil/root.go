package testutil

import (
	"os"
	"testing"
)

// verdict is what NeedRoot does with a test.
type verdict int

const (
	run  verdict = iota // everything needed is there
	skip                // something is missing, and this is not CI
	fail                // something is missing, and CI=true forbids skipping
)

func (v verdict) String() string {
	switch v {
	case run:
		return "run"
	case skip:
		return "skip"
	case fail:
		return "fail"
	}
	return "verdict(?)"
}

// decide is NeedRoot's rule. missing says what the test lacks ("" when it
// lacks nothing); ci is whether it runs under CI=true.
func decide(missing string, ci bool) verdict {
	switch {
	case missing == "":
		return run
	case ci:
		return fail
	default:
		return skip
	}
}

// inCI reports whether the environment says CI=true: exactly "true", as
// .ci/run sets it.
func inCI() bool { return os.Getenv("CI") == "true" }

// NeedRoot lets the test go on only with root and what root-only tests use:
// CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_ADMIN, and network namespaces.
// Without them it skips the test saying what is missing, except under
// CI=true, where it fails it instead: in CI every test must really run.
func NeedRoot(t testing.TB) {
	t.Helper()
	needRoot(t, missing(), inCI())
}

func needRoot(t testing.TB, missing string, ci bool) {
	t.Helper()
	need(t, "root and network namespaces", missing, ci)
}

// Need lets the test go on only when missing is "": otherwise it skips
// saying that it needs what and why it lacks it, or fails it under
// CI=true, where everything the tests use is there. It is for what
// NeedRoot, NeedOwnNetNS and NeedTool do not cover: user namespaces, say.
// A test never skips with t.Skip for what is missing: that skip would
// pass in CI too.
func Need(t testing.TB, what, missing string) {
	t.Helper()
	need(t, what, missing, inCI())
}

// need acts on decide's verdict for a test that needs what: it skips or
// fails the test saying what is missing, or lets it go on.
func need(t testing.TB, what, missing string, ci bool) {
	t.Helper()
	switch decide(missing, ci) {
	case fail:
		t.Fatalf("CI=true: this test needs %s, refusing to skip: %s", what, missing)
	case skip:
		t.Skipf("needs %s: %s (under CI=true this fails instead)", what, missing)
	}
}
