package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// dumpHA renders the ha: block for golden files and messages.
func dumpHA(c *Config) string {
	h := c.HA
	if h == nil {
		return "ha none\n"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "ha vrid=%d priority=%d advert_interval=%s preempt=%t preempt_delay=%s line=%d",
		h.VRID, h.Priority, h.AdvertInterval, h.Preempt, h.PreemptDelay, h.Line)
	if h.Interface != "" { // a keepalived.conf's vrrp_instance
		fmt.Fprintf(&s, " interface=%q", h.Interface)
	}
	if h.Addrs != nil { // a keepalived.conf's virtual_ipaddress
		fmt.Fprintf(&s, " addrs=%v", h.Addrs)
	}
	if h.SkipCheckAdvAddr { // a keepalived.conf's skip_check_adv_addr
		s.WriteString(" skip_check_adv_addr")
	}
	s.WriteByte('\n')
	if h.Sync != nil {
		fmt.Fprintf(&s, "  sync peers=%v key_file=%q line=%d\n", h.Sync.Peers, h.Sync.KeyFile, h.Sync.Line)
	}
	return s.String()
}

func TestGoldenHA(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "ha.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "ha.yaml.golden", dump(c)+dumpHA(c))
}

// haHead is a one-service config followed by the start of an ha: block.
var haHead = oneRS + lines(
	"ha:",
	"  vrid: 51",
)

func TestParseHAGood(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"none", oneRS, "ha none\n"},
		{"defaults", haHead + "  priority: 100\n",
			"ha vrid=51 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=7\n"},
		{"flow style, no preempt", oneRS + "ha: {vrid: 255, priority: 1, advert_interval: 40.95s, preempt: false}\n",
			"ha vrid=255 priority=1 advert_interval=40.95s preempt=false preempt_delay=0s line=6\n"},
		{"sync", haHead + "  priority: 254\n  advert_interval: 10ms\n  sync:\n    peers: [198.18.0.3, 198.18.0.4]\n    key_file: /etc/drlb/sync.key\n",
			"ha vrid=51 priority=254 advert_interval=10ms preempt=true preempt_delay=0s line=7\n  sync peers=[198.18.0.3 198.18.0.4] key_file=\"/etc/drlb/sync.key\" line=11\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("drlb.yaml", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpHA(c); got != tc.want {
				t.Errorf("got:\n%swant:\n%s", got, tc.want)
			}
			if k := c.Clone(); dumpHA(k) != tc.want || (c.HA != nil && k.HA == c.HA) {
				t.Errorf("Clone: %s (shared: %t)", dumpHA(k), c.HA != nil && k.HA == c.HA)
			}
		})
	}
}

func TestParseHABad(t *testing.T) {
	prio := "  priority: 100\n"
	for _, tc := range []badCase{
		{name: "not a mapping", in: oneRS + "ha: 51\n", line: 6, col: 5, field: "ha", value: "51", msg: "must be a mapping with fields vrid, priority, advert_interval, preempt, preempt_delay, sync"},
		{name: "vrid missing", in: oneRS + "ha:\n" + prio, line: 7, col: 3, field: "ha.vrid", msg: "required field missing"},
		{name: "priority missing", in: haHead, line: 7, col: 3, field: "ha.priority", msg: "required field missing"},
		{name: "vrid 0", in: oneRS + "ha:\n  vrid: 0\n" + prio, line: 7, col: 9, field: "ha.vrid", value: "0", msg: "1..255"},
		{name: "vrid 256", in: oneRS + "ha:\n  vrid: 256\n" + prio, line: 7, col: 9, field: "ha.vrid", value: "256", msg: "1..255"},
		{name: "vrid junk", in: oneRS + "ha:\n  vrid: one\n" + prio, line: 7, col: 9, field: "ha.vrid", value: "one", msg: "whole number"},
		{name: "priority 255", in: haHead + "  priority: 255\n", line: 8, col: 13, field: "ha.priority", value: "255", msg: "no address owner in DR"},
		{name: "priority 0", in: haHead + "  priority: 0\n", line: 8, col: 13, field: "ha.priority", value: "0", msg: "1..254"},
		{name: "advert not centiseconds", in: haHead + prio + "  advert_interval: 105ms\n", line: 9, col: 20, field: "ha.advert_interval", value: "105ms", msg: "whole centiseconds"},
		{name: "advert too long", in: haHead + prio + "  advert_interval: 41s\n", line: 9, col: 20, field: "ha.advert_interval", value: "41s", msg: "10ms..40.95s"},
		{name: "advert 0", in: haHead + prio + "  advert_interval: 0s\n", line: 9, col: 20, field: "ha.advert_interval", value: "0s", msg: "10ms..40.95s"},
		{name: "advert no unit", in: haHead + prio + "  advert_interval: 1\n", line: 9, col: 20, field: "ha.advert_interval", value: "1", msg: "with a unit"},
		{name: "preempt junk", in: haHead + prio + "  preempt: yes\n", line: 9, col: 12, field: "ha.preempt", value: "yes", msg: "true or false"},
		{name: "preempt delay negative", in: haHead + prio + "  preempt_delay: -1s\n", line: 9, col: 18, field: "ha.preempt_delay", value: "-1s", msg: "0s..1h0m0s"},
		{name: "preempt delay without preempt", in: haHead + prio + "  preempt: false\n  preempt_delay: 5s\n", line: 10, col: 18, field: "ha.preempt_delay", value: "5s", msg: "preempt: false"},
		{name: "with bgp", in: haHead + prio + "bgp: {asn: 65001, peers: [{address: 198.18.0.1, asn: 65000}]}\n", line: 7, col: 3, field: "ha", msg: "exclude each other"},
		{name: "sync without key", in: haHead + prio + "  sync: {peers: [198.18.0.3]}\n", line: 9, col: 9, field: "ha.sync.key_file", msg: "required field missing"},
		{name: "sync empty key", in: haHead + prio + "  sync: {peers: [198.18.0.3], key_file: ''}\n", line: 9, field: "ha.sync.key_file", msg: "refused without a shared secret"},
		{name: "sync no peers", in: haHead + prio + "  sync: {peers: [], key_file: k}\n", line: 9, field: "ha.sync.peers", msg: "at least one peer"},
		{name: "sync peer junk", in: haHead + prio + "  sync: {peers: [198.18.0.300], key_file: k}\n", line: 9, col: 18, field: "ha.sync.peers[0]", value: "198.18.0.300", msg: "not a numeric"},
		{name: "sync peer multicast", in: haHead + prio + "  sync: {peers: [224.0.0.18], key_file: k}\n", line: 9, col: 18, field: "ha.sync.peers[0]", value: "224.0.0.18", msg: "multicast"},
		{name: "sync peer is the VIP", in: haHead + prio + "  sync: {peers: [198.18.0.100], key_file: k}\n", line: 9, col: 18, field: "ha.sync.peers[0]", value: "198.18.0.100", msg: "cannot be a VIP"},
		{name: "sync IPv6 peer", in: haHead + prio + "  sync: {peers: [198.18.0.3, '2001:2::3'], key_file: k}\n", line: 9, col: 30, field: "ha.sync.peers[1]", value: "2001:2::3", msg: "IPv6 sync peers are not supported yet"},
		{name: "sync duplicate peer", in: haHead + prio + "  sync: {peers: [198.18.0.3, 198.18.0.3], key_file: k}\n", line: 9, col: 30, field: "ha.sync.peers[1]", value: "198.18.0.3", msg: "duplicate peer"},
		{name: "unknown field", in: haHead + prio + "  advert_intervall: 1s\n", line: 9, col: 3, field: "ha.advert_intervall", msg: `did you mean "advert_interval"?`},
		{name: "given twice", in: haHead + prio + "  vrid: 52\n", line: 9, col: 3, field: "ha.vrid", msg: "field given twice (first at line 7)"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "drlb.yaml", tc) })
	}
}

// TestHAVIPCountPerFamily: the 255-address limit of a VRRP advert holds
// per virtual router, for the VIPs its adverts carry: the IPv4 VIPs (none
// from a keepalived.conf, whose IPv4 adverts carry virtual_ipaddress: its
// virtual_ipaddress_excluded exists for address lists too long for an
// advert) and the IPv6 VIPs, each on its own. The VIPs of both families
// were counted together, and a keepalived.conf with 300 VIPs in
// virtual_ipaddress_excluded was refused, with no line.
func TestHAVIPCountPerFamily(t *testing.T) {
	vip4 := func(i int) string { return fmt.Sprintf("198.18.%d.%d", 1+i/250, 1+i%250) }
	yaml := func(n4, n6 int) string {
		var b strings.Builder
		b.WriteString("ha:\n  vrid: 51\n  priority: 100\nservices:\n")
		for i := range n4 {
			fmt.Fprintf(&b, "  - {vip: %s, port: 80, realservers: [{address: 198.18.0.11}]}\n", vip4(i))
		}
		for i := range n6 {
			fmt.Fprintf(&b, "  - {vip: '2001:2::1:%x', port: 80, realservers: [{address: '2001:2::11'}]}\n", i+1)
		}
		return b.String()
	}
	keepalived := func(excluded int) string {
		var b strings.Builder
		b.WriteString("global_defs {\n vrrp_version 3\n}\nvrrp_instance VI_1 {\n virtual_router_id 7\n virtual_ipaddress {\n  198.18.0.100\n }\n virtual_ipaddress_excluded {\n")
		for i := range excluded {
			fmt.Fprintf(&b, "  %s\n", vip4(i))
		}
		b.WriteString(" }\n}\nvirtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n")
		for i := range excluded {
			fmt.Fprintf(&b, "virtual_server %s 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n", vip4(i))
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, file, in string
		want           string // "" accepted, else a piece of the error
	}{
		{"255 IPv4 VIPs", "drlb.yaml", yaml(255, 0), ""},
		{"256 IPv4 VIPs", "drlb.yaml", yaml(256, 0), `services: "256": at most 255 IPv4 VIPs with ha:`},
		{"200 IPv4 and 100 IPv6 VIPs: two virtual routers", "drlb.yaml", yaml(200, 100), ""},
		{"256 IPv6 VIPs", "drlb.yaml", yaml(1, 256), `services: "256": at most 255 IPv6 VIPs with ha:`},
		{"keepalived.conf, 300 VIPs in virtual_ipaddress_excluded", "keepalived.conf", keepalived(300), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseWithWarnings(tc.file, []byte(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one holding %q", err, tc.want)
			case tc.want != "" && strings.HasPrefix(err.Error(), tc.file+": "):
				t.Errorf("error %v names no line", err)
			}
		})
	}
}
