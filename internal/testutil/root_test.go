package testutil

import (
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		missing string
		ci      bool
		want    verdict
	}{
		{"", false, run},
		{"", true, run},
		{"not root (euid 1000)", false, skip},
		{"not root (euid 1000)", true, fail},
		{"root without CAP_NET_ADMIN (a restricted container?)", false, skip},
		{"root without CAP_NET_ADMIN (a restricted container?)", true, fail},
		{"network namespaces need Linux", false, skip},
		{"network namespaces need Linux", true, fail},
	} {
		if got := decide(tc.missing, tc.ci); got != tc.want {
			t.Errorf("decide(%q, ci=%v) = %v, want %v", tc.missing, tc.ci, got, tc.want)
		}
	}
}

func TestInCI(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want bool
	}{{"true", true}, {"", false}, {"1", false}, {"TRUE", false}, {"false", false}} {
		t.Setenv("CI", tc.env)
		if got := inCI(); got != tc.want {
			t.Errorf("CI=%q: inCI() = %v, want %v", tc.env, got, tc.want)
		}
	}
}

// TestNeedActs checks that each verdict reaches the test, for root and
// for a tool: the reason is in the skip or failure message, and a test
// that may run goes on.
func TestNeedActs(t *testing.T) {
	for name, act := range map[string]func(testing.TB, string, bool){
		"needRoot": needRoot,
		"need(a program)": func(tb testing.TB, missing string, ci bool) {
			need(tb, "a program", missing, ci)
		},
	} {
		const why = "not there"
		for _, tc := range []struct {
			missing        string
			ci             bool
			skip, fail, on bool
		}{
			{"", false, false, false, true},
			{"", true, false, false, true},
			{why, false, true, false, false},
			{why, true, false, true, false},
		} {
			wentOn := false
			f := runFake(t, func(tb testing.TB) {
				act(tb, tc.missing, tc.ci)
				wentOn = true
			})
			if (f.skipped != "") != tc.skip || (f.failed != "") != tc.fail || wentOn != tc.on {
				t.Errorf("%s(%q, ci=%v): skipped %q, failed %q, went on %v", name, tc.missing, tc.ci, f.skipped, f.failed, wentOn)
			}
			if msg := f.skipped + f.failed; tc.missing != "" && !strings.Contains(msg, tc.missing) {
				t.Errorf("%s(%q, ci=%v) said %q, without the reason", name, tc.missing, tc.ci, msg)
			}
			if tc.fail && !strings.Contains(f.failed, "CI=true") {
				t.Errorf("%s: the failure %q does not say CI=true is why", name, f.failed)
			}
		}
	}
}

// TestNeedReadsCI: Need takes CI=true from the environment, as NeedRoot
// does: there it fails where it would skip elsewhere.
func TestNeedReadsCI(t *testing.T) {
	for _, tc := range []struct {
		env, missing string
		skip, fail   bool
	}{
		{"", "", false, false},
		{"true", "", false, false},
		{"", "no user namespaces", true, false},
		{"true", "no user namespaces", false, true},
	} {
		t.Setenv("CI", tc.env)
		f := runFake(t, func(tb testing.TB) { Need(tb, "user namespaces", tc.missing) })
		if (f.skipped != "") != tc.skip || (f.failed != "") != tc.fail {
			t.Errorf("CI=%q, missing %q: skipped %q, failed %q", tc.env, tc.missing, f.skipped, f.failed)
		}
		if msg := f.skipped + f.failed; tc.missing != "" && !strings.Contains(msg, tc.missing) {
			t.Errorf("CI=%q: %q does not say what is missing", tc.env, msg)
		}
	}
}

// TestNeedRootHere: the real probe agrees with how this test runs.
func TestNeedRootHere(t *testing.T) {
	m := missing()
	t.Logf("missing: %q", m)
	f := runFake(t, func(tb testing.TB) { needRoot(tb, m, false) })
	if (m == "") != (f.skipped == "") || f.failed != "" {
		t.Errorf("missing %q: skipped %q, failed %q", m, f.skipped, f.failed)
	}
}
