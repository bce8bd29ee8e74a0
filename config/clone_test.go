package config

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestClone(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "drlb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := dump(c)
	d := c.Clone()
	if !reflect.DeepEqual(c, d) {
		t.Fatal("clone differs from the original")
	}
	// Change everything reachable in the clone: the original must not move.
	d.Services[0].Scheduler = "rr"
	d.Services[0].RealServers[0].Weight = 99
	d.Services[0].RealServers[0].MAC[5] = 0xee
	d.Services[0].RealServers[0].Check.URLs[0].Path = "/changed"
	d.Services = append(d.Services[:1], d.Services[2:]...)
	if got := dump(c); got != want {
		t.Fatalf("changing the clone changed the original:\n%s\nwant\n%s", got, want)
	}
	if (*Config)(nil).Clone() != nil {
		t.Fatal("a nil config's clone is not nil")
	}
}
