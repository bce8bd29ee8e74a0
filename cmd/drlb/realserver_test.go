package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drlb/drlb/realserver"
)

// memSystem keeps addresses in memory and sysctls under a temporary /proc/sys.
type memSystem struct {
	realserver.ProcSys
	lo map[netip.Prefix]bool
}

func newMemSystem(t *testing.T) *memSystem {
	root := t.TempDir()
	for _, dev := range []string{"all", "eth0"} {
		dir := filepath.Join(root, "net/ipv4/conf", dev)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"arp_ignore", "arp_announce"} {
			if err := os.WriteFile(filepath.Join(dir, k), []byte("0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &memSystem{ProcSys: realserver.ProcSys(root), lo: map[netip.Prefix]bool{}}
}

func (m *memSystem) LinkExists(dev string) (bool, error) { return dev == "eth0" || dev == "lo", nil }
func (m *memSystem) HasAddr(_ string, p netip.Prefix) (bool, error) {
	return m.lo[p], nil
}
func (m *memSystem) AddAddr(_ string, p netip.Prefix) error { m.lo[p] = true; return nil }
func (m *memSystem) DelAddr(_ string, p netip.Prefix) error { delete(m.lo, p); return nil }

func TestRealserverCommand(t *testing.T) {
	sys := newMemSystem(t)
	state := filepath.Join(t.TempDir(), "rs.json")
	newSys := func() (realserver.System, error) { return sys, nil }
	tests := []struct {
		args    string
		wantOut string
		wantErr error
		wantMsg string
	}{
		{"", "", errUsage, "missing action"},
		{"sideways --vip 198.18.0.100", "", errUsage, `unknown action "sideways"`},
		{"up", "", errUsage, "--vip is required"},
		{"up --vip 198.18.0.300", "", errUsage, `--vip "198.18.0.300" is not an IP address`},
		{"up --vip 198.18.0.100 extra", "", errUsage, `unexpected argument "extra"`},
		{"up --bogus", "", errUsage, "flag provided but not defined"},
		{"up --vip 127.0.0.1", "", errUsage, "not a unicast"},
		{"up --vip 198.18.0.100 --iface eth9", "", errUsage, "no such interface"},
		{"up --vip 198.18.0.100 --iface eth0 --state " + state, strings.Join([]string{
			"sysctl -w net.ipv4.conf.all.arp_ignore=1",
			"sysctl -w net.ipv4.conf.all.arp_announce=2",
			"sysctl -w net.ipv4.conf.eth0.arp_ignore=1",
			"sysctl -w net.ipv4.conf.eth0.arp_announce=2",
			"ip addr add 198.18.0.100/32 dev lo",
		}, "\n") + "\n", nil, ""},
		{"up --vip 198.18.0.100 --iface eth0 --state " + state, strings.Join([]string{
			"sysctl -w net.ipv4.conf.all.arp_ignore=1 (already set)",
			"sysctl -w net.ipv4.conf.all.arp_announce=2 (already set)",
			"sysctl -w net.ipv4.conf.eth0.arp_ignore=1 (already set)",
			"sysctl -w net.ipv4.conf.eth0.arp_announce=2 (already set)",
			"ip addr add 198.18.0.100/32 dev lo (already set)",
		}, "\n") + "\n", nil, ""},
		{"down --vip 198.18.0.100 --state " + state, strings.Join([]string{
			"ip addr del 198.18.0.100/32 dev lo",
			"sysctl -w net.ipv4.conf.eth0.arp_announce=0",
			"sysctl -w net.ipv4.conf.eth0.arp_ignore=0",
			"sysctl -w net.ipv4.conf.all.arp_announce=0",
			"sysctl -w net.ipv4.conf.all.arp_ignore=0",
		}, "\n") + "\n", nil, ""},
		{"-h", "usage: drlb realserver", nil, ""},
		{"up -h", "", flag.ErrHelp, ""},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := realserverCmd(strings.Fields(tt.args), &out, &errOut, newSys)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantMsg)
			}
			if !strings.HasPrefix(out.String(), tt.wantOut) || strings.Contains(tt.wantOut, "sysctl") && out.String() != tt.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tt.wantOut)
			}
		})
	}
}

func TestRealserverSystemError(t *testing.T) {
	boom := fmt.Errorf("root is needed")
	err := realserverCmd([]string{"up", "--vip", "198.18.0.100"}, &bytes.Buffer{}, &bytes.Buffer{},
		func() (realserver.System, error) { return nil, boom })
	if !errors.Is(err, boom) || errors.Is(err, errUsage) {
		t.Errorf("err = %v, want the system error as a runtime failure", err)
	}
}
