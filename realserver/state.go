package realserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
)

// DefaultStateDir holds the state files.
const DefaultStateDir = "/run/drlb"

// DefaultStatePath is where Up records what it changed for vip.
func DefaultStatePath(vip netip.Addr) string {
	return filepath.Join(DefaultStateDir, "realserver-"+vip.String()+".json")
}

// State is what Up found before it changed anything: enough for Down to put
// it back. It is saved as JSON.
type State struct {
	// VIP the state belongs to.
	VIP netip.Addr `json:"vip"`
	// AddedAddr is true when Up put the VIP on lo; false when it was there already.
	AddedAddr bool `json:"added_addr"`
	// Sysctls are the settings Up changed or checked, with their values before.
	Sysctls []SavedSysctl `json:"sysctls,omitempty"`
}

// SavedSysctl is one sysctl's value before Up.
type SavedSysctl struct {
	Path     string `json:"path"` // under /proc/sys, e.g. net/ipv4/conf/all/arp_ignore
	Previous string `json:"previous"`
}

// previous returns the saved value for path.
func (s *State) previous(path string) (string, bool) {
	for _, ss := range s.Sysctls {
		if ss.Path == path {
			return ss.Previous, true
		}
	}
	return "", false
}

// ParseState decodes a state file's contents; name is used in errors.
func ParseState(name string, data []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, name, err)
	}
	if !s.VIP.IsValid() {
		return nil, fmt.Errorf("%w: %s: missing field \"vip\"", ErrState, name)
	}
	for i, ss := range s.Sysctls {
		if err := checkSysctlPath(ss.Path); err != nil {
			return nil, fmt.Errorf("%w: %s: sysctls[%d].path: %v", ErrState, name, i, err)
		}
		if len(ss.Previous) > 64 {
			return nil, fmt.Errorf("%w: %s: sysctls[%d].previous is %d bytes long", ErrState, name, i, len(ss.Previous))
		}
	}
	return &s, nil
}

// checkSysctlPath accepts only the settings this package manages, so a
// tampered state file cannot make Down write anywhere else.
func checkSysctlPath(p string) error {
	dir, key := filepath.Split(p)
	if key != "arp_ignore" && key != "arp_announce" {
		return fmt.Errorf("%q is not an arp_ignore or arp_announce setting", p)
	}
	dev := filepath.Base(dir)
	if filepath.Dir(filepath.Clean(dir)) != "net/ipv4/conf" || checkDevName(dev) != nil && dev != "all" {
		return fmt.Errorf("%q is not under net/ipv4/conf/<interface>/", p)
	}
	return nil
}

// loadState returns nil, nil when there is no state file.
func loadState(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	return ParseState(path, data)
}

// saveState writes atomically (temporary file, then rename), so a crash
// never leaves half a state file.
func saveState(path string, s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".realserver-*.tmp")
	if err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving state %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving state %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving state %s: %w", path, err)
	}
	return nil
}
