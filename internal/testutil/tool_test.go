package testutil

import (
	"errors"
	"strings"
	"testing"
)

func TestFindTool(t *testing.T) {
	look := func(name string) (string, error) {
		if name == "chromium" {
			return "/usr/bin/chromium", nil
		}
		return "", errors.New("not found")
	}
	if p, m := findTool(look, []string{"google-chrome", "chromium"}); p != "/usr/bin/chromium" || m != "" {
		t.Errorf("found %q, missing %q", p, m)
	}
	if p, m := findTool(look, []string{"firefox", "lynx"}); p != "" || m != "none of firefox, lynx in $PATH" {
		t.Errorf("found %q, missing %q", p, m)
	}
}

// TestNeedToolActs: a missing tool skips, or fails under CI=true, saying
// which; a present one lets the test go on.
func TestNeedToolActs(t *testing.T) {
	const why = "none of chromium in $PATH"
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
			needTool(tb, tc.missing, tc.ci)
			wentOn = true
		})
		if (f.skipped != "") != tc.skip || (f.failed != "") != tc.fail || wentOn != tc.on {
			t.Errorf("needTool(%q, ci=%v): skipped %q, failed %q, went on %v", tc.missing, tc.ci, f.skipped, f.failed, wentOn)
		}
		if msg := f.skipped + f.failed; tc.missing != "" && !strings.Contains(msg, tc.missing) {
			t.Errorf("needTool(%q, ci=%v) said %q, without the reason", tc.missing, tc.ci, msg)
		}
	}
}
