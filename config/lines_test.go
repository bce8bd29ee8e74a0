package config

import "testing"

// TestConfigLines: Parse keeps the line of each setting outside the
// services it read (Config.Lines, LineOf), in the file it was given: none
// for a default, for the services (whose paths a drlb ctl change moves),
// or for what a keepalived.conf's include holds. Clone copies them.
func TestConfigLines(t *testing.T) {
	const yaml = `# a comment
interface: eth0
vlan: 10
ha:
  vrid: 51
  priority: 100
  sync:
    peers: [198.18.0.2]
    key_file: /etc/drlb/sync.key
services:
  - vip: 198.18.0.100
    port: 80
    realservers:
      - {address: 198.18.0.11}
`
	c, err := Parse("drlb.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"interface": 2, "vlan": 3, "ha": 5, "ha.vrid": 5, "ha.sync": 8, "ha.sync.peers": 8, "ha.sync.key_file": 9,
		"max_conns": 0, "ha.preempt": 0, "services": 0, "services[0]": 0, "services[0].vip": 0,
	} {
		if got := c.LineOf(path); got != want {
			t.Errorf("LineOf(%q) = %d, want %d", path, got, want)
		}
	}
	d := c.Clone()
	d.Lines["interface"] = 99
	if c.LineOf("interface") != 2 {
		t.Error("changing the clone's Lines changed the original's")
	}
	if (&Config{}).LineOf("interface") != 0 || (*Config)(nil).LineOf("interface") != 0 {
		t.Error("a Config built in code has lines")
	}
	// NoteOf places a setting in a message the way LineNote does.
	for path, want := range map[string]string{"ha.sync.key_file": " (line 9)", "max_conns": ""} {
		if got := c.NoteOf(path); got != want {
			t.Errorf("NoteOf(%q) = %q, want %q", path, got, want)
		}
	}
	if (*Config)(nil).NoteOf("interface") != "" {
		t.Error("a nil Config places a setting on a line")
	}

	vrrp := "vrrp_instance VI_1 {\n version 3\n interface eth1\n virtual_router_id 51\n virtual_ipaddress {\n  198.18.0.100\n }\n}\n"
	vs := "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n"
	fsys := mapFS{"etc/vrrp.inc": vrrp}
	for _, tc := range []struct {
		name, conf       string
		iface, vrid, svc int
	}{
		{"in the file", "# keepalived\n" + vrrp + vs, 4, 5, 0},
		{"in an include", "include vrrp.inc\n" + vs, 0, 0, 0},
	} {
		k, _, err := parse(fsys, "etc/keepalived.conf", []byte(tc.conf))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if k.LineOf("interface") != tc.iface || k.LineOf("ha.vrid") != tc.vrid || k.LineOf("services[0].vip") != tc.svc {
			t.Errorf("keepalived.conf, vrrp_instance %s: interface at %d, ha.vrid at %d, services[0].vip at %d, want %d, %d, %d",
				tc.name, k.LineOf("interface"), k.LineOf("ha.vrid"), k.LineOf("services[0].vip"), tc.iface, tc.vrid, tc.svc)
		}
	}
}
