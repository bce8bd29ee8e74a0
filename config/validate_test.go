package config

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func validConfig() *Config {
	return &Config{
		Interface: "eth0",
		Timeouts:  DefaultTimeouts,
		MaxConns:  DefaultMaxConns,
		Services: []Service{{
			VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Protocol: TCP,
			Scheduler: "wlc", PersistenceBits: 32, Line: 3,
			RealServers: []RealServer{
				{Address: netip.MustParseAddr("198.18.0.11"), Weight: 1, Line: 7},
				{Address: netip.MustParseAddr("198.18.0.12"), Weight: 1, Line: 8,
					Check: &Check{Type: "http", URLs: []URL{{Path: "/", Status: []StatusRange{{200, 200}}}}, Interval: time.Second, Timeout: time.Second, RetryDelay: time.Second, Retries: 3}},
			},
		}},
	}
}

func dnsCheck(name, typ string) Check {
	return Check{Type: "dns", DNSName: name, DNSType: typ, Interval: time.Second, Timeout: time.Second, RetryDelay: time.Second, Retries: 3}
}

// TestValidate covers Config.Validate for configs built in code: the Field
// is the YAML path and the Line comes from the struct.
func TestValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, name := range []string{".", "example.org", "example.org.", "_dns._udp.example.org", strings.Repeat("a", 63) + ".org"} {
		for _, typ := range DNSTypes {
			c := validConfig()
			*c.Services[0].RealServers[1].Check = dnsCheck(name, typ.Name)
			if err := c.Validate(); err != nil {
				t.Errorf("dns check %q %s: %v", name, typ.Name, err)
			}
		}
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"no services", func(c *Config) { c.Services = nil }, "services: no services defined"},
		{"zero timeouts", func(c *Config) { c.Timeouts = Timeouts{} }, `timeouts.tcp: "0s": must be more than 0`},
		{"zero max conns", func(c *Config) { c.MaxConns = 0 }, `max_conns: "0": must be 1..1073741824`},
		{"vlan 4095", func(c *Config) { c.VLAN = 4095 }, `vlan: "4095": must be a VLAN ID 1..4094 (0 or absent: untagged)`},
		{"missing vip", func(c *Config) { c.Services[0].VIP = netip.Addr{} }, "3: services[0].vip: an address is required"},
		{"zone vip", func(c *Config) { c.Services[0].VIP = netip.MustParseAddr("fe80::1%eth0") }, `3: services[0].vip: "fe80::1%eth0": an IPv6 zone is not allowed here`},
		{"protocol", func(c *Config) { c.Services[0].Protocol = 1 }, `3: services[0].protocol: "proto(1)": must be tcp or udp`},
		{"empty scheduler", func(c *Config) { c.Services[0].Scheduler = "" }, "3: services[0].scheduler: unknown scheduler"},
		{"bits", func(c *Config) { c.Services[0].PersistenceBits = 24 }, `3: services[0].persistence_netmask: "24": a persistence netmask needs persistence`},
		{"bits 0", func(c *Config) { c.Services[0].PersistenceBits = 0 }, `3: services[0].persistence_netmask: "0": a /0 persistence netmask (every client to one server, as IPVS does) is not supported`},
		{"weight", func(c *Config) { c.Services[0].RealServers[1].Weight = -3 }, `8: services[0].realservers[1].weight: "-3": must be 0..65535`},
		{"mac length", func(c *Config) { c.Services[0].RealServers[0].MAC = net.HardwareAddr{2, 0, 0, 0} }, `7: services[0].realservers[0].mac: "02:00:00:00": must be a 6-byte MAC address`},
		{"check type", func(c *Config) { c.Services[0].RealServers[1].Check.Type = "" }, "8: services[0].realservers[1].check.type: must be tcp, http, https, udp or dns"},
		{"dns name", func(c *Config) { *c.Services[0].RealServers[1].Check = dnsCheck("a..b", "A") },
			`8: services[0].realservers[1].check.name: "a..b": not a domain name to ask for: an empty label`},
		{"dns type lower case", func(c *Config) { *c.Services[0].RealServers[1].Check = dnsCheck("example.org", "a") },
			`8: services[0].realservers[1].check.record: "a": must be a record type drlb asks for`},
		{"dns type missing", func(c *Config) { *c.Services[0].RealServers[1].Check = dnsCheck("example.org", "") },
			`8: services[0].realservers[1].check.record: must be a record type drlb asks for`},
		{"dns name on an http check", func(c *Config) { c.Services[0].RealServers[1].Check.DNSName = "." },
			`8: services[0].realservers[1].check.name: ".": only dns checks ask for a name or a record type`},
		{"dns type on an http check", func(c *Config) { c.Services[0].RealServers[1].Check.DNSType = "SOA" },
			`8: services[0].realservers[1].check.record: "SOA": only dns checks ask for a name or a record type`},
		{"dns check with a url", func(c *Config) {
			k := dnsCheck(".", "SOA")
			k.URLs = c.Services[0].RealServers[1].Check.URLs
			*c.Services[0].RealServers[1].Check = k
		}, `8: services[0].realservers[1].check.path: "/": only http and https checks have a path`},
		{"dns check with a payload", func(c *Config) {
			k := dnsCheck(".", "SOA")
			k.Payload = []byte{0}
			*c.Services[0].RealServers[1].Check = k
		}, `8: services[0].realservers[1].check.payload: only udp checks send a payload or expect a reply`},
		{"duplicate", func(c *Config) { c.Services = append(c.Services, c.Services[0]) }, `3: services[1]: "tcp 198.18.0.100:80": duplicate service: services[0] (line 3) is the same`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Validate() = %q\nwant prefix %q", err, tc.want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 7, Column: 12, Field: "a.b", Value: "-1", Msg: "bad"}, `f:7:12: a.b: "-1": bad`},
		{Error{File: "f", Line: 7, Msg: "bad"}, `f:7: bad`},
		{Error{File: "f", Column: 3, Msg: "bad"}, `f: bad`},
		{Error{Line: 2, Field: "x", Msg: "bad"}, `2: x: bad`},
		{Error{Msg: "bad"}, `bad`},
		{Error{File: "f", Value: string(make([]byte, 100)), Msg: "m"}, `f: "` + repeat(`\x00`, 80) + `"...: m`},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(&tc.e, ErrInvalid) {
			t.Errorf("%q does not wrap ErrInvalid", tc.want)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// TestCheckClone: a clone shares nothing its original can change.
func TestCheckClone(t *testing.T) {
	k := dnsCheck("example.org", "A")
	k.URLs = []URL{{Path: "/", Status: []StatusRange{{200, 200}}}}
	k.Payload, k.Reply, k.ReplyMask = []byte{1}, []byte{2}, []byte{3}
	c := k.Clone()
	c.DNSName, c.DNSType = "example.net", "MX"
	c.URLs[0].Status[0].Min = 500
	c.Payload[0], c.Reply[0], c.ReplyMask[0] = 9, 9, 9
	if k.DNSName != "example.org" || k.DNSType != "A" || k.URLs[0].Status[0].Min != 200 ||
		k.Payload[0] != 1 || k.Reply[0] != 2 || k.ReplyMask[0] != 3 {
		t.Fatalf("changing the clone changed the original: %+v", k)
	}
	if back := c.Clone(); back.DNSName != "example.net" || back.DNSType != "MX" {
		t.Fatalf("Clone lost the dns fields: %+v", back)
	}
	if (*Check)(nil).Clone() != nil {
		t.Fatal("Clone of nil is not nil")
	}
}
