package config

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// kaVRRP is a vrrp_instance (lines 1-...) with body inside, before kaService
// (whose VIP is 198.18.0.100).
func kaVRRP(global, body string) string {
	return global + "vrrp_instance VI_1 {\n" + body + " virtual_ipaddress {\n  198.18.0.100\n }\n}\n" + kaService
}

// TestKeepalivedVRRPGood: the vrrp_instance holding the VIPs becomes ha:,
// and what drlb does not do is warned about, keyword by keyword.
func TestKeepalivedVRRPGood(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  string   // dumpHA
		iface string   // Config.Interface
		warns []string // pieces of the warnings, in order
	}{
		{"version 3 in the instance, fractional advert_int, state, what is warned",
			"vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n version 3\n virtual_router_id 51\n priority 150\n advert_int 0.1\n preempt_delay 2.5\n" +
				" track_script {\n  chk\n }\n notify_master /bin/true\n authentication {\n  auth_type PASS\n }\n garp_master_delay 10\n garp_master_refresh 60\n" +
				" use_vmac\n lvs_sync_daemon eth0\n unicast_peer {\n }\n frobnicate\n virtual_ipaddress {\n  198.18.0.100/24 dev eth0\n  198.18.0.50\n }\n}\n" + kaService,
			"ha vrid=51 priority=150 advert_interval=100ms preempt=true preempt_delay=2.5s line=1 interface=\"eth0\" addrs=[198.18.0.100 198.18.0.50]\n", "eth0",
			[]string{
				`keepalived.conf:2: warning: keyword "state" ignored (drlb elects by priority from the start, as keepalived does with preemption: the initial state does not matter)`,
				`keepalived.conf:9: warning: keyword "track_script" ignored (drlb's priority does not follow scripts`,
				`keepalived.conf:12: warning: keyword "notify_master" ignored (notify scripts are not run`,
				`keepalived.conf:13: warning: keyword "authentication" ignored (VRRPv3 has no authentication (RFC 5798))`,
				`keepalived.conf:16: warning: keyword "garp_master_delay" ignored (drlb's own timing: a new master sends 5 gratuitous ARP / unsolicited NA per VIP at once and 5 more 2 s later)`,
				`keepalived.conf:17: warning: keyword "garp_master_refresh" ignored (drlb's own timing`,
				`keepalived.conf:18: warning: keyword "use_vmac" ignored (drlb answers ARP for the VIPs with its own MAC`,
				`keepalived.conf:19: warning: keyword "lvs_sync_daemon" ignored (IPVS's sync daemon is not run: drlb's connection sync is ha: sync: in YAML, which needs a key file`,
				`keepalived.conf:20: warning: keyword "unicast_peer" ignored (no peers: adverts go by multicast`,
				`keepalived.conf:22: warning: keyword "frobnicate" ignored (not a keepalived keyword in vrrp_instance`,
				`keepalived.conf:25: warning: 198.18.0.50 in vrrp_instance VI_1 is not the VIP of a virtual_server: drlb's adverts carry it, as keepalived's do`,
			}},
		{"vrrp_version 3 in global_defs, keepalived's defaults", kaVRRP("global_defs {\n vrrp_version 3\n}\n", " virtual_router_id 7\n"),
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=4 addrs=[198.18.0.100]\n", "", nil},
		{"global_defs after the instance, state BACKUP", kaVRRP("", " state BACKUP\n virtual_router_id 7\n") + "global_defs {\n vrrp_version 3\n}\n",
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=1 addrs=[198.18.0.100]\n", "", []string{`keyword "state" ignored`}},
		{"version 3 here overrides vrrp_version 2", kaVRRP("global_defs {\n vrrp_version 2\n}\n", " version 3\n virtual_router_id 7\n priority 254\n advert_int 40.95\n"),
			"ha vrid=7 priority=254 advert_interval=40.95s preempt=true preempt_delay=0s line=4 addrs=[198.18.0.100]\n", "", nil},
		// keepalived's skip_check_adv_addr: the instance's, else
		// global_defs' vrrp_skip_check_adv_addr; a bare keyword is true.
		{"skip_check_adv_addr", kaVRRP("", " version 3\n virtual_router_id 7\n skip_check_adv_addr\n"),
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=1 addrs=[198.18.0.100] skip_check_adv_addr\n", "", nil},
		{"vrrp_skip_check_adv_addr in global_defs", kaVRRP("global_defs {\n vrrp_version 3\n vrrp_skip_check_adv_addr\n}\n", " virtual_router_id 7\n"),
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=5 addrs=[198.18.0.100] skip_check_adv_addr\n", "", nil},
		{"skip_check_adv_addr off overrides global_defs", kaVRRP("global_defs {\n vrrp_version 3\n vrrp_skip_check_adv_addr true\n}\n", " virtual_router_id 7\n skip_check_adv_addr off\n"),
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=5 addrs=[198.18.0.100]\n", "", nil},
		{"dont_track_primary: drlb follows the link anyway", kaVRRP("", " version 3\n virtual_router_id 7\n dont_track_primary\n"),
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=1 addrs=[198.18.0.100]\n", "",
			[]string{`keepalived.conf:4: warning: keyword "dont_track_primary" ignored (drlb always follows the interface's link, as keepalived does without it: FAULT while the link is down)`}},
		{"nopreempt drops preempt_delay, as keepalived", kaVRRP("", " version 3\n virtual_router_id 7\n nopreempt\n preempt_delay 5\n"),
			"ha vrid=7 priority=100 advert_interval=1s preempt=false preempt_delay=0s line=1 addrs=[198.18.0.100]\n", "",
			[]string{`keepalived.conf:5: warning: keyword "preempt_delay" ignored (with nopreempt there is no preemption to delay, as keepalived ignores it)`}},
		// vrrp_parser.c clears nopreempt and preempt_delay under an
		// initial MASTER: keepalived's director preempts at once.
		{"state MASTER clears nopreempt and preempt_delay", kaVRRP("", " state MASTER\n version 3\n virtual_router_id 7\n priority 150\n nopreempt\n preempt_delay 5\n"),
			"ha vrid=7 priority=150 advert_interval=1s preempt=true preempt_delay=0s line=1 addrs=[198.18.0.100]\n", "",
			[]string{`keepalived.conf:2: warning: keyword "state" ignored`, `keepalived.conf:6: warning: keyword "nopreempt" ignored (keepalived clears it under state MASTER`, `keepalived.conf:7: warning: keyword "preempt_delay" ignored (keepalived clears it under state MASTER`}},
		{"state MASTER clears preempt_delay", kaVRRP("", " state MASTER\n version 3\n virtual_router_id 7\n priority 150\n preempt_delay 5\n"),
			"ha vrid=7 priority=150 advert_interval=1s preempt=true preempt_delay=0s line=1 addrs=[198.18.0.100]\n", "",
			[]string{`keepalived.conf:2: warning: keyword "state" ignored`, `keepalived.conf:6: warning: keyword "preempt_delay" ignored (keepalived clears it under state MASTER`}},
		// "master" is keepalived's "unknown state", run as BACKUP: its
		// nopreempt holds, and without a priority it is 100, not 255.
		{"state master in small letters is BACKUP", kaVRRP("", " state master\n version 3\n virtual_router_id 7\n nopreempt\n"),
			"ha vrid=7 priority=100 advert_interval=1s preempt=false preempt_delay=0s line=1 addrs=[198.18.0.100]\n", "",
			[]string{`keepalived.conf:2: warning: keyword "state" ignored (keepalived takes MASTER and BACKUP in capitals only: it runs "master" as BACKUP`}},
		{"several instances: the one holding the VIPs", "vrrp_sync_group G {\n group {\n  VI_0\n  VI_1\n }\n}\n" +
			"vrrp_instance VI_0 {\n virtual_router_id 9\n unicast_peer {\n  198.18.0.9\n }\n virtual_ipaddress {\n  198.18.0.9\n }\n}\n" +
			kaVRRP("", " version 3\n virtual_router_id 7\n"),
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=16 addrs=[198.18.0.100]\n", "",
			[]string{
				`keepalived.conf:1: warning: keyword "vrrp_sync_group" ignored (drlb runs one VRRP instance, the one holding the VIPs`,
				`keepalived.conf:7: warning: keyword "vrrp_instance" ignored (it holds none of the virtual_server VIPs: drlb does not add addresses to interfaces`,
			}},
		{"IPv6 VIP excluded from an IPv4 instance", "vrrp_instance VI_1 {\n version 3\n virtual_router_id 7\n virtual_ipaddress {\n  198.18.0.100\n }\n virtual_ipaddress_excluded {\n  2001:2::100/64\n }\n}\n" +
			kaService + "virtual_server [2001:2::100]:80 {\n lb_kind DR\n protocol TCP\n real_server 2001:2::11 80 {\n }\n}\n",
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=1 addrs=[198.18.0.100]\n", "",
			[]string{"keepalived.conf:8: warning: 2001:2::100: drlb elects its IPv6 VIPs on a virtual router of their own"}}, // beside a keepalived peer, both would hold them
		{"IPv6 address in an IPv4 instance's list, no VIP: warned, not advertised", "vrrp_instance VI_1 {\n version 3\n virtual_router_id 7\n virtual_ipaddress {\n  198.18.0.100\n  2001:2::7\n }\n}\n" + kaService,
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=1 addrs=[198.18.0.100]\n", "",
			[]string{"keepalived.conf:6: warning: 2001:2::7 in vrrp_instance VI_1 is not the VIP of a virtual_server, nor of the instance's family (IPv4): the adverts do not carry it; ignored"}},
		// keepalived adds such an address on the dev named; drlb answers
		// ARP on its interface only: said, not passed over in silence.
		// dev naming the instance's interface, label and scope change
		// nothing for drlb, which adds no address.
		{"virtual_ipaddress on another dev", "vrrp_instance VI_1 {\n version 3\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n" +
			"  198.18.0.100/24 dev eth1 label eth1:vip\n  198.18.0.50/24 dev eth0 scope global label eth0:1\n }\n virtual_ipaddress_excluded {\n  198.18.0.51 dev eth2\n }\n}\n" + kaService,
			"ha vrid=7 priority=100 advert_interval=1s preempt=true preempt_delay=0s line=1 interface=\"eth0\" addrs=[198.18.0.100 198.18.0.50]\n", "eth0",
			[]string{
				`keepalived.conf:6: warning: 198.18.0.100 dev eth1: keepalived adds it on eth1, but drlb answers ARP/NDP for its VIPs on the vrrp_instance's interface eth0 only`,
				`keepalived.conf:7: warning: 198.18.0.50 in vrrp_instance VI_1 is not the VIP of a virtual_server`,
				`keepalived.conf:10: warning: 198.18.0.51 dev eth2: keepalived adds it on eth2, but drlb answers ARP/NDP for its VIPs on the vrrp_instance's interface eth0 only`,
				`keepalived.conf:10: warning: 198.18.0.51 in vrrp_instance VI_1 is not the VIP of a virtual_server: ignored`,
			}},
		{"no instance holds a VIP: no ha", "vrrp_instance VI_1 {\n virtual_router_id 7\n virtual_ipaddress {\n  198.18.0.7\n }\n}\n" + kaService,
			"ha none\n", "", []string{`keepalived.conf:1: warning: keyword "vrrp_instance" ignored (it holds none of the virtual_server VIPs`}},
		// The instance is judged once the whole file is read; its
		// warning came after every later line's (README's example had
		// them in line order, drlb check printed 4, 41, 15).
		{"warnings in line order", "global_defs {\n router_id lb1\n}\nvrrp_instance VI_1 {\n virtual_router_id 7\n virtual_ipaddress {\n  198.18.0.7\n }\n}\n" +
			strings.Replace(kaService, "    protocol TCP\n", "    protocol TCP\n    frobnicate\n", 1),
			"ha none\n", "", []string{`keepalived.conf:2: warning: keyword "router_id" ignored`, `keepalived.conf:4: warning: keyword "vrrp_instance" ignored`, `keepalived.conf:14: warning: keyword "frobnicate" ignored`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := ParseWithWarnings("keepalived.conf", []byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := dumpHA(c); got != tc.want {
				t.Errorf("ha:\n%swant:\n%s", got, tc.want)
			}
			if c.Interface != tc.iface {
				t.Errorf("interface %q, want %q", c.Interface, tc.iface)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate of a parsed config: %v", err)
			}
			text := dumpWarnings(warns)
			if len(tc.warns) != len(warns) {
				t.Errorf("%d warnings, want %d:\n%s", len(warns), len(tc.warns), text)
			}
			for i, w := range tc.warns {
				if i < len(warns) && !strings.Contains(warns[i].String(), w) {
					t.Errorf("warning %d is %q, want it to contain %q", i, warns[i].String(), w)
				}
			}
		})
	}
}

// TestKeepalivedVRRPAdvertAddrs: the adverts carry what keepalived's do
// for the instance, its virtual_ipaddress (the IPv4 entries, in order),
// since a keepalived peer drops adverts whose list differs from it; they
// carried the VIPs, which a keepalived peer dropped, and both were MASTER.
// YAML has no such list: nil, the adverts carry the VIPs.
func TestKeepalivedVRRPAdvertAddrs(t *testing.T) {
	const (
		v3   = "global_defs {\n vrrp_version 3\n}\n"
		vs   = kaService + "virtual_server 198.18.0.101 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n"
		vs6  = "virtual_server [2001:2::100]:80 {\n lb_kind DR\n protocol TCP\n real_server 2001:2::11 80 {\n }\n}\n"
		inst = "vrrp_instance VI_1 {\n virtual_router_id 7\n"
	)
	tests := []struct {
		name, file, in string
		want           string // fmt of HA.Addrs
	}{
		{"an address that is no VIP is carried", "keepalived.conf",
			v3 + inst + " virtual_ipaddress {\n  198.18.0.100\n  198.18.0.101/24 dev eth0\n  198.18.0.50\n }\n}\n" + vs, "[198.18.0.100 198.18.0.101 198.18.0.50]"},
		{"in the order written", "keepalived.conf",
			v3 + inst + " virtual_ipaddress {\n  198.18.0.101\n  198.18.0.100\n }\n}\n" + vs, "[198.18.0.101 198.18.0.100]"},
		{"a VIP in virtual_ipaddress_excluded is not carried", "keepalived.conf",
			v3 + inst + " virtual_ipaddress {\n  198.18.0.100\n }\n virtual_ipaddress_excluded {\n  198.18.0.101\n }\n}\n" + vs, "[198.18.0.100]"},
		{"an IPv6 entry after an IPv4 one is not carried (keepalived drops it)", "keepalived.conf",
			v3 + inst + " virtual_ipaddress {\n  198.18.0.100\n  2001:2::100\n }\n}\n" + kaService + vs6, "[198.18.0.100]"},
		{"IPv6 VIPs alone: no IPv4 adverts", "keepalived.conf",
			v3 + inst + " virtual_ipaddress_excluded {\n  2001:2::100\n }\n}\n" + vs6, "[]"},
		{"YAML: the VIPs, as before", "drlb.yaml",
			"ha:\n  vrid: 7\n  priority: 100\nservices:\n  - vip: 198.18.0.100\n    port: 80\n    realservers:\n      - address: 198.18.0.11\n", "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := ParseWithWarnings(tc.file, []byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.HA == nil {
				t.Fatal("no ha")
			}
			if got := fmt.Sprint(c.HA.Addrs); got != tc.want {
				t.Errorf("adverts carry %s, want %s", got, tc.want)
			}
			if tc.want == "[]" && c.HA.Addrs != nil {
				t.Errorf("Addrs %#v, want nil (the adverts carry the VIPs)", c.HA.Addrs)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate of a parsed config: %v", err)
			}
			d := c.Clone()
			if got := fmt.Sprint(d.HA.Addrs); got != tc.want {
				t.Errorf("Clone: adverts carry %s, want %s", got, tc.want)
			}
			if len(d.HA.Addrs) > 0 {
				d.HA.Addrs[0] = netip.IPv4Unspecified()
				if got := fmt.Sprint(c.HA.Addrs); got != tc.want {
					t.Errorf("changing the clone's list changed the original's to %s", got)
				}
			}
		})
	}
}

// TestKeepalivedVRRPBad: what drlb's VRRP cannot do as keepalived would is
// refused at its file, line and column.
func TestKeepalivedVRRPBad(t *testing.T) {
	v3 := "global_defs {\n vrrp_version 3\n}\n"
	tests := []badCase{
		{"VRRPv2, keepalived's default", kaVRRP("", " virtual_router_id 7\n"), 1, 1, "version", "", "as VRRPv2, its default: drlb speaks VRRPv3 only"},
		{"vrrp_version 2", kaVRRP("global_defs {\n vrrp_version 2\n}\n", " virtual_router_id 7\n"), 2, 15, "version", "2", "drlb speaks VRRPv3 only"},
		{"version 2", kaVRRP(v3, " version 2\n virtual_router_id 7\n"), 5, 10, "version", "2", "drlb speaks VRRPv3 only"},
		{"vrrp_version 4", kaVRRP("global_defs {\n vrrp_version 4\n}\n", ""), 2, 15, "vrrp_version", "4", "must be an integer 2..3"},
		{"priority 255", kaVRRP(v3, " virtual_router_id 7\n priority 255\n"), 6, 11, "priority", "255", "no address owner in DR"},
		{"state MASTER alone is 255", kaVRRP(v3, " state MASTER\n virtual_router_id 7\n"), 5, 8, "state", "MASTER", "priority 255"},
		{"state", kaVRRP(v3, " state FAULT\n"), 5, 8, "state", "FAULT", "must be MASTER or BACKUP"},
		{"no virtual_router_id", kaVRRP(v3, ""), 4, 1, "virtual_router_id", "", "missing"},
		{"virtual_router_id 0", kaVRRP(v3, " virtual_router_id 0\n"), 5, 20, "virtual_router_id", "0", "must be an integer 1..255"},
		{"advert_int not whole centiseconds", kaVRRP(v3, " virtual_router_id 7\n advert_int 0.105\n"), 6, 13, "advert_int", "0.105", "whole centiseconds"},
		{"advert_int too long", kaVRRP(v3, " virtual_router_id 7\n advert_int 50\n"), 6, 13, "advert_int", "50", "10ms..40.95s"},
		{"preempt_delay over 1000", kaVRRP(v3, " virtual_router_id 7\n preempt_delay 1001\n"), 6, 16, "preempt_delay", "1001", "0..1000 seconds"},
		{"unicast", kaVRRP(v3, " virtual_router_id 7\n unicast_peer {\n  198.18.0.3\n }\n"), 6, 2, "unicast_peer", "198.18.0.3", "by multicast to 224.0.0.18 only"},
		{"another multicast group", kaVRRP(v3, " virtual_router_id 7\n mcast_dst_ip 224.0.0.19\n"), 6, 15, "mcast_dst_ip", "224.0.0.19", "224.0.0.18 only"},
		{"bad address", kaVRRP(v3, " virtual_router_id 7\n virtual_ipaddress {\n  198.18.0.300\n }\n"), 7, 3, "virtual_ipaddress", "198.18.0.300", ""},
		{"two instances hold VIPs", kaVRRP(v3, " virtual_router_id 7\n") + "vrrp_instance VI_2 {\n virtual_router_id 8\n virtual_ipaddress {\n  198.18.0.100\n }\n}\n",
			18, 1, "vrrp_instance", "VI_2", "as vrrp_instance VI_1 at keepalived.conf:4 does: drlb runs one VRRP instance"},
		{"a VIP not held", kaVRRP(v3, " virtual_router_id 7\n") + "virtual_server 198.18.0.101 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
			4, 1, "vrrp_instance", "VI_1", "does not hold the VIP 198.18.0.101 of the virtual_server at line 18"},
		{"IPv4 VIPs in virtual_ipaddress_excluded alone", "global_defs {\n vrrp_version 3\n}\nvrrp_instance VI_1 {\n virtual_router_id 7\n virtual_ipaddress_excluded {\n  198.18.0.100\n }\n}\n" + kaService,
			4, 1, "vrrp_instance", "VI_1", "has no IPv4 address in virtual_ipaddress (the IPv4 VIP 198.18.0.100 of the virtual_server at line 10 is in virtual_ipaddress_excluded): keepalived refuses"},
		{"more addresses than an advert carries", kaVRRPMany(256), 262, 3, "virtual_ipaddress", "10.0.0.255", "more than 255 IPv4 addresses"},
		{"IPv6 instance", "vrrp_instance VI_6 {\n virtual_router_id 7\n virtual_ipaddress {\n  2001:2::100\n }\n}\n" +
			"virtual_server [2001:2::100]:80 {\n lb_kind DR\n protocol TCP\n real_server 2001:2::11 80 {\n }\n}\n",
			4, 3, "virtual_ipaddress", "2001:2::100", "runs the IPv6 VIPs' election on a virtual router of their own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "keepalived.conf", tc) })
	}
}

// kaVRRPMany is a VRRPv3 instance whose virtual_ipaddress holds
// 198.18.0.100 (line 7) and then n-1 addresses 10.0.0.1..., one a line.
func kaVRRPMany(n int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n vrrp_version 3\n}\nvrrp_instance VI_1 {\n virtual_router_id 7\n virtual_ipaddress {\n  198.18.0.100\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  10.0.%d.%d\n", i/256, i%256)
	}
	b.WriteString(" }\n}\n" + kaService)
	return b.String()
}
