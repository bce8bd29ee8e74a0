package realserver

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// System is what Up and Down need from the host. NewSystem is the real
// one; tests provide their own.
type System interface {
	// LinkExists reports whether the interface exists.
	LinkExists(dev string) (bool, error)
	// HasAddr reports whether p (address and prefix length) is on dev.
	HasAddr(dev string, p netip.Prefix) (bool, error)
	// AddAddr and DelAddr add and remove p on dev.
	AddAddr(dev string, p netip.Prefix) error
	DelAddr(dev string, p netip.Prefix) error
	// ReadSysctl and WriteSysctl read and write a sysctl given by its path
	// under /proc/sys, e.g. "net/ipv4/conf/all/arp_ignore".
	ReadSysctl(path string) (string, error)
	WriteSysctl(path, value string) error
}

// ProcSys reads and writes sysctls as files under a root directory:
// "/proc/sys" on a live host, a temporary directory in tests. Embed it to
// build a System.
type ProcSys string

// ReadSysctl returns the setting's value without surrounding white space.
func (r ProcSys) ReadSysctl(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(string(r), path))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s (%s)", ErrNoSysctl, SysctlName(path), filepath.Join(string(r), path))
	}
	if err != nil {
		return "", fmt.Errorf("reading sysctl %s: %w", SysctlName(path), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Devices lists the interfaces with IPv4 settings (the directories of
// net/ipv4/conf, "all" and "default" left out).
func (r ProcSys) Devices() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(string(r), "net/ipv4/conf"))
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var devs []string
	for _, e := range entries {
		if n := e.Name(); e.IsDir() && n != "all" && n != "default" {
			devs = append(devs, n)
		}
	}
	return devs, nil
}

// WriteSysctl sets the value. It never creates a file: a missing setting is
// an error wrapping ErrNoSysctl.
func (r ProcSys) WriteSysctl(path, value string) error {
	f, err := os.OpenFile(filepath.Join(string(r), path), os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s (%s)", ErrNoSysctl, SysctlName(path), filepath.Join(string(r), path))
	}
	if err != nil {
		return fmt.Errorf("writing sysctl %s=%s: %w", SysctlName(path), value, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing sysctl %s=%s: %w", SysctlName(path), value, err)
	}
	return nil
}

// SysctlName turns a /proc/sys path into sysctl(8)'s dotted name; a dot
// inside a component (a VLAN interface) becomes '/', as sysctl(8) expects:
// "net/ipv4/conf/eth0.100/arp_ignore" -> "net.ipv4.conf.eth0/100.arp_ignore".
func SysctlName(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}
