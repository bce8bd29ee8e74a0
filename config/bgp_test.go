package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// dumpBGP renders the bgp: block for golden files and messages.
func dumpBGP(c *Config) string {
	b := c.BGP
	if b == nil {
		return "bgp none\n"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "bgp asn=%d router_id=%s hold_time=%s min_realservers=%d line=%d\n", b.ASN, addrText(b.RouterID), b.HoldTime, b.MinRealServers, b.Line)
	for _, p := range b.Peers {
		fmt.Fprintf(&s, "  peer %s asn=%d port=%d password=%t line=%d\n", p.Address, p.ASN, p.Port, p.Password != "", p.Line)
	}
	return s.String()
}

func TestGoldenBGP(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "bgp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "bgp.yaml.golden", dump(c)+dumpBGP(c))
	if c.BGP.Peers[1].Password != "s3cret" {
		t.Errorf("password = %q", c.BGP.Peers[1].Password)
	}
}

// bgpHead is a one-service config followed by the start of a bgp: block.
var bgpHead = oneRS + lines(
	"bgp:",
	"  asn: 65001",
)

func TestParseBGPGood(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"none", oneRS, "bgp none\n"},
		{"defaults", bgpHead + "  peers: [{address: 198.18.0.1, asn: 65000}]\n",
			"bgp asn=65001 router_id= hold_time=9s min_realservers=1 line=7\n  peer 198.18.0.1 asn=65000 port=179 password=false line=8\n"},
		{"4-byte ASN, IPv6 peer", oneRS + "bgp: {asn: 4200000000, hold_time: 90s, peers: [{address: '2001:2::1', asn: 4200000001}]}\n",
			"bgp asn=4200000000 router_id= hold_time=1m30s min_realservers=1 line=6\n  peer 2001:2::1 asn=4200000001 port=179 password=false line=6\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("drlb.yaml", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpBGP(c); got != tc.want {
				t.Errorf("got:\n%swant:\n%s", got, tc.want)
			}
		})
	}
}

func TestParseBGPBad(t *testing.T) {
	peer := "  peers: [{address: 198.18.0.1, asn: 65000}]\n"
	for _, tc := range []badCase{
		{name: "not a mapping", in: oneRS + "bgp: 65001\n", line: 6, col: 6, field: "bgp", value: "65001", msg: "must be a mapping with fields asn, router_id, hold_time, min_realservers, peers"},
		{name: "asn missing", in: oneRS + "bgp:\n  peers: [{address: 198.18.0.1, asn: 65000}]\n", line: 7, col: 3, field: "bgp.asn", msg: "required field missing"},
		{name: "peers missing", in: bgpHead, line: 7, col: 3, field: "bgp.peers", msg: "required field missing"},
		{name: "asn 0", in: oneRS + "bgp:\n  asn: 0\n" + peer, line: 7, col: 8, field: "bgp.asn", value: "0", msg: "1..4294967295"},
		{name: "asn too big", in: oneRS + "bgp:\n  asn: 4294967296\n" + peer, line: 7, col: 8, field: "bgp.asn", value: "4294967296", msg: "an AS number must be an integer"},
		{name: "asn AS_TRANS", in: oneRS + "bgp:\n  asn: 23456\n" + peer, line: 7, col: 8, field: "bgp.asn", value: "23456", msg: "AS_TRANS"},
		{name: "peer asn AS_TRANS", in: bgpHead + "  peers: [{address: 198.18.0.1, asn: 23456}]\n", line: 8, col: 38, field: "bgp.peers[0].asn", value: "23456", msg: "AS_TRANS"},
		{name: "link-local VIP", in: "services:\n  - vip: 169.254.0.100\n    port: 80\n    realservers: [{address: 198.18.0.11}]\nbgp:\n  asn: 65001\n" + peer,
			line: 2, col: 10, field: "services[0].vip", value: "169.254.0.100", msg: "link-local VIP cannot be routed"},
		{name: "link-local IPv6 VIP", in: oneRS + "  - vip: 'fe80::100'\n    port: 80\n    realservers: [{address: '2001:2::11'}]\nbgp:\n  asn: 65001\n" + peer,
			line: 6, col: 10, field: "services[1].vip", value: "fe80::100", msg: "link-local VIP cannot be routed"},
		{name: "asn negative", in: oneRS + "bgp:\n  asn: -1\n" + peer, line: 7, col: 8, field: "bgp.asn", value: "-1", msg: "an AS number must be an integer 1..4294967295"},
		{name: "asdot", in: oneRS + "bgp:\n  asn: 1.10\n" + peer, line: 7, col: 8, field: "bgp.asn", value: "1.10", msg: "an AS number"},
		{name: "router id v6", in: bgpHead + "  router_id: 2001:2::2\n" + peer, line: 8, col: 14, field: "bgp.router_id", value: "2001:2::2", msg: "IPv4"},
		{name: "router id junk", in: bgpHead + "  router_id: director\n" + peer, line: 8, col: 14, field: "bgp.router_id", value: "director", msg: "not a numeric"},
		{name: "hold time short", in: bgpHead + "  hold_time: 1s\n" + peer, line: 8, col: 14, field: "bgp.hold_time", value: "1s", msg: "3s..65535s"},
		{name: "hold time 0", in: bgpHead + "  hold_time: 0s\n" + peer, line: 8, col: 14, field: "bgp.hold_time", value: "0s", msg: "never drop a dead director"},
		{name: "hold time fraction", in: bgpHead + "  hold_time: 3500ms\n" + peer, line: 8, col: 14, field: "bgp.hold_time", value: "3500ms", msg: "whole seconds"},
		{name: "hold time no unit", in: bgpHead + "  hold_time: 3\n" + peer, line: 8, col: 14, field: "bgp.hold_time", value: "3", msg: "with a unit"},
		{name: "min real servers 0", in: bgpHead + "  min_realservers: 0\n" + peer, line: 8, col: 20, field: "bgp.min_realservers", value: "0", msg: "1..65535"},
		{name: "no peers", in: bgpHead + "  peers: []\n", line: 8, col: 10, field: "bgp.peers", msg: "at least one peer"},
		{name: "peer without asn", in: bgpHead + "  peers: [{address: 198.18.0.1}]\n", line: 8, col: 11, field: "bgp.peers[0].asn", msg: "required field missing"},
		{name: "peer bad address", in: bgpHead + "  peers: [{address: 198.18.0.300, asn: 65000}]\n", line: 8, col: 21, field: "bgp.peers[0].address", value: "198.18.0.300", msg: "not a numeric"},
		{name: "peer loopback", in: bgpHead + "  peers: [{address: 127.0.0.1, asn: 65000}]\n", line: 8, col: 21, field: "bgp.peers[0].address", value: "127.0.0.1", msg: "loopback"},
		{name: "peer link-local", in: bgpHead + "  peers: [{address: 'fe80::1', asn: 65000}]\n", line: 8, col: 21, field: "bgp.peers[0].address", value: "fe80::1", msg: "link-local peer cannot be reached"},
		{name: "peer port 0", in: bgpHead + "  peers: [{address: 198.18.0.1, asn: 65000, port: 0}]\n", line: 8, col: 51, field: "bgp.peers[0].port", value: "0", msg: "1..65535"},
		{name: "peer is the VIP", in: bgpHead + "  peers: [{address: 198.18.0.100, asn: 65000}]\n", line: 8, col: 21, field: "bgp.peers[0].address", value: "198.18.0.100", msg: "cannot be a VIP"},
		{name: "duplicate peer", in: bgpHead + "  peers:\n    - {address: 198.18.0.1, asn: 65000}\n    - {address: 198.18.0.1, asn: 65002}\n",
			line: 10, col: 17, field: "bgp.peers[1].address", value: "198.18.0.1", msg: "duplicate peer: bgp.peers[0] (line 9)"},
		{name: "password too long, not repeated", in: bgpHead + "  peers: [{address: 198.18.0.1, asn: 65000, password: " + strings.Repeat("k", 81) + "}]\n",
			line: 8, field: "bgp.peers[0].password", value: "(secret)", msg: "at most 80 bytes"},
		{name: "unknown field", in: bgpHead + "  holdtime: 3s\n" + peer, line: 8, col: 3, field: "bgp.holdtime", msg: `did you mean "hold_time"?`},
		{name: "given twice", in: bgpHead + peer + "  asn: 65002\n", line: 9, col: 3, field: "bgp.asn", msg: "field given twice (first at line 7)"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "drlb.yaml", tc) })
	}
}
