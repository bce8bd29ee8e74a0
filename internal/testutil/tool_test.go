package testutil

import (
	"errors"
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
