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

// TestCheckIdentity: every field of a Check but its timers and Inhibit is
// part of its identity, a field added later included (set to something
// other than its zero value, it makes another check).
func TestCheckIdentity(t *testing.T) {
	tuning := map[string]bool{"Interval": true, "Retries": true, "RetryDelay": true, "Inhibit": true}
	base := &Check{Type: "http", URLs: []URL{{Path: "/", Status: []StatusRange{{200, 299}}}}, Interval: 1, Timeout: 1, Retries: 1, RetryDelay: 1}
	typ := reflect.TypeFor[Check]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		other := base.Clone()
		v := reflect.ValueOf(other).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 7)
		case reflect.Uint16:
			v.SetUint(v.Uint() + 7)
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.Zero(f.Type.Elem())))
		default:
			t.Fatalf("Check.%s: a %s: teach this test to change it", f.Name, v.Kind())
		}
		if same := SameIdentity(base, other); same != tuning[f.Name] {
			t.Errorf("Check.%s changed: SameIdentity = %v, want %v", f.Name, same, tuning[f.Name])
		}
	}
	if !SameIdentity(nil, nil) || SameIdentity(base, nil) || SameIdentity(nil, base) {
		t.Error("SameIdentity with nil checks")
	}
}
