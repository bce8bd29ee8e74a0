package config

import (
	"os"
	"strings"
	"testing"
)

// TestKeepalivedDocExample parses the keepalived.conf example at the top
// of keepalived.go: the one a reader copies must be one drlb accepts (it
// once had url { path /healthz status_code 200 } on one line, which the
// reader refuses: "path: takes one value").
func TestKeepalivedDocExample(t *testing.T) {
	src, err := os.ReadFile("keepalived.go")
	if err != nil {
		t.Fatal(err)
	}
	var conf []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(line, "//\t") {
			if in {
				break
			}
			continue
		}
		text := strings.TrimPrefix(line, "//\t")
		if strings.HasPrefix(text, "virtual_server ") {
			in = true
		}
		if in {
			conf = append(conf, text)
		}
	}
	if len(conf) == 0 {
		t.Fatal("keepalived.go has no indented virtual_server example in its comment")
	}
	text := strings.Join(conf, "\n") + "\n"
	c, warnings, err := ParseWithWarnings("keepalived.conf", []byte(text))
	if err != nil {
		t.Fatalf("the example in keepalived.go's comment does not parse: %v\n%s", err, text)
	}
	if len(warnings) != 0 {
		t.Errorf("the example in keepalived.go's comment has warnings: %v", warnings)
	}
	if len(c.Services) != 1 || len(c.Services[0].RealServers) != 1 {
		t.Fatalf("want 1 service with 1 real server, got %s", dump(c))
	}
	ck := c.Services[0].RealServers[0].Check
	if ck == nil || ck.Type != "http" || len(ck.URLs) != 1 || ck.URLs[0].Path != "/healthz" {
		t.Errorf("want an http check of /healthz, got %s", dump(c))
	}
}
