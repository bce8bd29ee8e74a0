package config

import (
	"errors"
	"testing"
)

// TestServerIsVIPBlamesWhatWasWrittenLast: the rule "blame the later of
// the two" must follow the order the text was written in, not the
// service index. An ipvsadm -a for an earlier service may come after a
// later -A, and a drlb ctl -a adds to a service that may stand before the
// one whose VIP it names: the error must point at that -a (its line, or
// its -r), not at a -A the user did not just write.
func TestServerIsVIPBlamesWhatWasWrittenLast(t *testing.T) {
	rules := "-A -t 198.18.0.100:80 -s rr\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.11 -g\n" +
		"-A -t 198.18.0.101:80 -s rr\n" +
		"-a -t 198.18.0.101:80 -r 198.18.0.12 -g\n"
	checkBad(t, "rules.ipvsadm", badCase{"ipvsadm -a after a later -A",
		rules + "-a -t 198.18.0.100:80 -r 198.18.0.101 -g\n",
		5, 26, "-r", "198.18.0.101", "is the VIP of services[1] (line 3)"})

	c, err := Parse("rules.ipvsadm", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	_, err = EditIpvsadm(c, []string{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.101"})
	var e *Error
	if !errors.As(err, &e) || e.Field != "-r" || e.Value != "198.18.0.101" {
		t.Fatalf("drlb ctl -a of another service's VIP: %v (field %q), want the -r just given blamed", err, fieldOf(e))
	}
	// A -A naming an existing real server's address is still the one blamed.
	_, err = EditIpvsadm(c, []string{"-A", "-t", "198.18.0.11:443"})
	if !errors.As(err, &e) || e.Field != "-t" {
		t.Fatalf("drlb ctl -A of a real server's address: %v, want -t blamed", err)
	}
}

func fieldOf(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Field
}

// TestYAMLNotTextColumnAfterBOM: a UTF-8 byte order mark is no character
// of the first line for the YAML library (it skips it), so text() must
// not count it either: its column for a bad byte on line 1 was one more
// than the library's columns for every other error there.
func TestYAMLNotTextColumnAfterBOM(t *testing.T) {
	checkBad(t, "drlb.yaml", badCase{"BOM, then Latin-1 on line 1", "\ufeffinterface: a\xffb\n" + oneRS,
		1, 13, "", "", "not UTF-8 text (byte 0xff)"})
	// The library's own column for the same place, for comparison.
	checkBad(t, "drlb.yaml", badCase{"BOM, then a bad name on line 1", "\ufeffinterface: a/b\n" + oneRS,
		1, 12, "interface", "a/b", "not a Linux interface name"})
}
