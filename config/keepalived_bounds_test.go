package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestKeepalivedBounds: inputs that made the keepalived.conf reader do
// work far beyond their size are refused, naming where: a
// virtual_server_group of many addresses times many real servers (a
// /20 times 500 made 2 million real servers, 4.5 GiB, from 22 KB), and an
// include pattern beyond PATH_MAX (each brace level rescans it).
func TestKeepalivedBounds(t *testing.T) {
	var group strings.Builder
	group.WriteString("virtual_server_group g {\n 198.18.0.0/22 80\n}\nvirtual_server group g {\n lb_kind DR\n protocol TCP\n")
	for i := range 100 {
		fmt.Fprintf(&group, " real_server 198.19.0.%d 80 { TCP_CHECK { } }\n", i+1)
	}
	group.WriteString("}\n")
	for _, tc := range []struct {
		name, conf, field, msg string
		line                   int
	}{
		{"group times real servers", group.String(), "virtual_server", "more services and real servers than this file spells out", 4},
		{"include pattern beyond PATH_MAX", "include " + strings.Repeat("{", 3000) + strings.Repeat("}", 3000) + "\n", "include", "longer than 4096 bytes", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(mapFS{}, "keepalived.conf", []byte(tc.conf))
			var e *Error
			if !errors.As(err, &e) || e.Field != tc.field || e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) {
				t.Fatalf("error %v (%+v), want field %s at line %d saying %q", err, e, tc.field, tc.line, tc.msg)
			}
		})
	}
	// Many warnings are each kept once (a map, not a scan of the list).
	_, w, err := parse(mapFS{}, "keepalived.conf", []byte(strings.Repeat("x\n", 1000)+"virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1000 {
		t.Errorf("%d warnings for 1000 unknown keywords, want each once", len(w))
	}
}
