package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestDoctorUsage: a bad -role is named whatever else is missing; it was
// reported as "no interface" when -iface was not given.
func TestDoctorUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-role", "bogus", "-vip", "198.18.0.100"}, `-role "bogus": want director or realserver`},
		{[]string{"-role", "bogus"}, `-role "bogus": want director or realserver`},
		{[]string{"-role", "realserver", "-vip", "198.18.0.100"}, "no interface"},
		{[]string{"-role", "realserver", "-iface", "eth0"}, "no VIP"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := runDoctor(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a usage error saying %q", err, tc.want)
			}
		})
	}
}
