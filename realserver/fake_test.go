package realserver

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// fakeSystem keeps addresses in memory and sysctls in a temporary
// directory standing in for /proc/sys.
type fakeSystem struct {
	ProcSys
	links map[string]map[netip.Prefix]bool
	calls []string
}

func newFake(t *testing.T, ifaces ...string) *fakeSystem {
	t.Helper()
	root := t.TempDir()
	f := &fakeSystem{ProcSys: ProcSys(root), links: map[string]map[netip.Prefix]bool{"lo": {}}}
	for _, dev := range append([]string{"all", "default", "lo"}, ifaces...) {
		f.links[dev] = map[netip.Prefix]bool{}
		for key, v := range map[string]string{"arp_ignore": "0", "arp_announce": "0"} {
			f.set(t, "net/ipv4/conf/"+dev+"/"+key, v)
		}
	}
	delete(f.links, "all")
	delete(f.links, "default")
	return f
}

func (f *fakeSystem) set(t *testing.T, path, v string) {
	t.Helper()
	p := filepath.Join(string(f.ProcSys), path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeSystem) get(t *testing.T, path string) string {
	t.Helper()
	v, err := f.ReadSysctl(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fakeSystem) LinkExists(dev string) (bool, error) { _, ok := f.links[dev]; return ok, nil }

func (f *fakeSystem) HasAddr(dev string, p netip.Prefix) (bool, error) {
	l, ok := f.links[dev]
	if !ok {
		return false, fmt.Errorf("no link %s", dev)
	}
	return l[p], nil
}

func (f *fakeSystem) AddAddr(dev string, p netip.Prefix) error {
	f.calls = append(f.calls, "add "+p.String())
	if f.links[dev][p] {
		return fmt.Errorf("file exists")
	}
	f.links[dev][p] = true
	return nil
}

func (f *fakeSystem) DelAddr(dev string, p netip.Prefix) error {
	f.calls = append(f.calls, "del "+p.String())
	if !f.links[dev][p] {
		return fmt.Errorf("cannot assign requested address")
	}
	delete(f.links[dev], p)
	return nil
}

func (f *fakeSystem) WriteSysctl(path, v string) error {
	f.calls = append(f.calls, "sysctl "+path+"="+v)
	return f.ProcSys.WriteSysctl(path, v)
}
