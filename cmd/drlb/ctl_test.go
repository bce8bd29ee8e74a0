package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestCtlUsage(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ctl"}, exitUsage, "usage: drlb ctl list"},
		{[]string{"ctl", "show"}, exitUsage, "usage: drlb ctl list"},
		{[]string{"ctl", "list", "-o", "yaml"}, exitUsage, `-o "yaml"`},
		{[]string{"ctl", "list", "-stats", "-rate"}, exitUsage, "do not mix"},
		{[]string{"ctl", "list", "-s", none}, exitFailure, "is drlb run running"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
}
