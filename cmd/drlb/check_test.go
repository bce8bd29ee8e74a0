package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckCommand: drlb check -c FILE prints the warnings and a one-line
// summary and exits 0, or exits 2 naming FILE:LINE:COL, the field and the
// value, for every format.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ka := filepath.Join("..", "..", "config", "testdata", "keepalived", "full.conf")
	dnsConf := filepath.Join("..", "..", "config", "testdata", "keepalived", "dns_check.conf")
	nat := write("nat.conf", "virtual_server 198.18.0.100 80 {\n    lb_kind NAT\n    protocol TCP\n    real_server 198.18.0.11 80 {\n    }\n}\n")
	fwmark := write("fwmark.conf", "virtual_server fwmark 1 {\n    lb_kind DR\n}\n")
	badYAML := write("bad.yaml", "services:\n  - vip: 198.18.0.100\n    port: 80\n    realservers:\n      - {address: 198.18.0.11, weight: -1}\n")
	vrrp := filepath.Join("..", "..", "config", "testdata", "keepalived", "sample_vrrp3.conf")
	v2 := write("v2.conf", "vrrp_instance VI_1 {\n    virtual_router_id 51\n    virtual_ipaddress {\n        198.18.0.100\n    }\n}\n"+
		"virtual_server 198.18.0.100 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.11 80 {\n    }\n}\n")
	syncYAML := func(key string) string {
		return "interface: eth0\nha:\n  vrid: 51\n  priority: 150\n  sync:\n    peers: [198.18.0.2, 198.18.0.3]\n    key_file: " + key +
			"\nservices:\n  - vip: 198.18.0.100\n    port: 80\n    scheduler: mh\n    realservers:\n      - address: 198.18.0.11\n"
	}
	goodKey := write("sync.key", "0123456789abcdef0123456789abcdef\n")
	syncMissing := write("sync-missing.yaml", syncYAML(filepath.Join(dir, "no.key")))
	syncGood := write("sync-good.yaml", syncYAML(goodKey))
	rules := write("rules", "-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"yaml", []string{"check", "-c", filepath.Join("..", "..", "testdata", "replay", "services.yaml")}, exitOK,
			"services.yaml: ok: 3 services on 2 VIPs, 6 real servers, 0 health checks\n", nil},
		{"ipvsadm rules", []string{"check", "-c", rules}, exitOK, "rules: ok: 1 service on 1 VIP, 1 real server, 0 health checks\n", nil},
		{"keepalived.conf with warnings", []string{"check", "-c", ka}, exitOK,
			"full.conf: ok: 6 services on 6 VIPs, 7 real servers, 13 health checks (3 http, 1 https, 7 tcp, 2 udp), 1 sorry server; 11 warnings\n",
			[]string{
				ka + `:6: warning: keyword "router_id" ignored (a keepalived global setting drlb has no use for)` + "\n",
				ka + `:55: warning: keyword "MISC_CHECK" ignored (drlb runs TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK and DNS_CHECK only: this check does not judge the real server)` + "\n",
			}},
		{"keepalived.conf with DNS_CHECK", []string{"check", "-c", dnsConf}, exitOK,
			"dns_check.conf: ok: 2 services on 1 VIP, 3 real servers, 4 health checks (4 dns); 3 warnings\n",
			[]string{dnsConf + `:39: warning: keyword "type" ignored (keepalived knows no DNS_CHECK type "PTR"`}},
		{"keepalived.conf with a vrrp_instance", []string{"check", "-c", vrrp}, exitOK,
			"sample_vrrp3.conf: ok: 1 service on 1 VIP, 1 real server, 1 health check (1 http), 1 sorry server, interface eth0; 6 warnings\n" +
				vrrp + ": ha: VRRPv3 vrid 50, priority 100, advert_interval 1s, no preempt\n",
			[]string{vrrp + `:26: warning: 198.18.0.11 in vrrp_instance VI_1 is not the VIP of a virtual_server`}},
		{"YAML with ha:", []string{"check", "-c", filepath.Join("..", "..", "config", "testdata", "ha.yaml")}, exitOK,
			"ha.yaml: ha: VRRPv3 vrid 51, priority 150, advert_interval 100ms, preempt after 5s\n", nil},
		// A sync key drlb run cannot read is a warning (the file may
		// live only on the directors): ExecStartPre passed a start that
		// failed.
		{"ha.sync without its key file", []string{"check", "-c", syncMissing}, exitOK, "1 warning\n" + syncMissing + ": ha: VRRPv3 vrid 51, priority 150, advert_interval 1s, preempt, sync with 2 peers\n",
			[]string{syncMissing + ":7: warning: drlb run would refuse to start: ha.sync.key_file: open " + filepath.Join(dir, "no.key") + ": no such file or directory"}},
		{"ha.sync with its key file", []string{"check", "-c", syncGood}, exitOK, "sync-good.yaml: ha: VRRPv3 vrid 51, priority 150, advert_interval 1s, preempt, sync with 2 peers\n", nil},
		{"VRRPv2", []string{"check", "-c", v2}, exitUsage, "",
			[]string{"drlb check: " + v2 + ":1:1: version: keepalived runs this vrrp_instance as VRRPv2, its default: drlb speaks VRRPv3 only"}},
		{"NAT", []string{"check", "-c", nat}, exitUsage, "",
			[]string{"drlb check: " + nat + `:2:13: lb_kind: "NAT": drlb does direct routing (DR) only: NAT and tunneling (TUN) are not supported` + "\n"}},
		{"fwmark", []string{"check", "-c", fwmark}, exitUsage, "", []string{fwmark + `:1:16: virtual_server: "fwmark 1": firewall-mark services are not supported`}},
		{"bad YAML", []string{"check", "-c", badYAML}, exitUsage, "",
			[]string{"drlb check: " + badYAML + `:5:40: services[0].realservers[0].weight: "-1": must be 0..65535` + "\n"}},
		{"no -c", []string{"check"}, exitUsage, "", []string{"-c CONFIG is required"}},
		{"missing file", []string{"check", "-c", filepath.Join(dir, "none.conf")}, exitUsage, "", []string{"none.conf: no such file or directory"}},
		{"extra argument", []string{"check", "-c", rules, "more"}, exitUsage, "", []string{`unexpected argument "more"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if got := stdout.String(); !strings.HasSuffix(got, tc.stdout) || (tc.stdout == "" && got != "") {
				t.Errorf("stdout %q, want it to end with %q", got, tc.stdout)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// TestReplayKeepalived: a keepalived.conf twin of the replay services,
// with the MACs on the command line, replays the scenario into the very
// frames the YAML gives, and its warnings go to stderr.
func TestReplayKeepalived(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.pcap")
	args := []string{"replay", "-c", filepath.Join("..", "..", "testdata", "replay", "services.conf"),
		"-in", filepath.Join("..", "..", "testdata", "replay", "mixed.pcap"), "-out", out, "-mtu", "1500"}
	for _, m := range []string{"198.18.0.11=02:00:00:00:00:11", "198.18.0.12=02:00:00:00:00:12", "198.18.0.13=02:00:00:00:00:13",
		"2001:2::11=02:00:00:00:00:11", "2001:2::12=02:00:00:00:00:12", "2001:2::13=02:00:00:00:00:13"} {
		args = append(args, "-rs-mac", m)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `services.conf:5: warning: keyword "router_id" ignored`) {
		t.Errorf("the warning is not on stderr: %q", stderr.String())
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "replay", "golden", "mixed.rr.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("replaying with the keepalived.conf differs from the YAML's rr golden pcap")
	}
}
