package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/lab"
)

// TestLabListScenarios: the list names every scenario and needs no root.
func TestLabListScenarios(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := labCmd(context.Background(), []string{"--list-scenarios"}, &stdout, &stderr, func() int { return 1000 }); err != nil {
		t.Fatal(err)
	}
	for _, sc := range lab.Scenarios() {
		if !strings.Contains(stdout.String(), "  "+sc.Name+" ") || !strings.Contains(stdout.String(), sc.Name+": "+sc.Shows) {
			t.Errorf("the list lacks %s:\n%s", sc.Name, stdout.String())
		}
	}
}

// TestLabScenarios runs every scenario as a user would: each must exit 0
// (it showed what it claims, every check passed), show its evidence, draw
// its page and leave no namespace behind.
func TestLabScenarios(t *testing.T) {
	testutil.NeedRoot(t)
	evidence := map[string][]string{
		"arp-flux": {
			"is-at 02:00:c6:12:00:0b   (its kernel)", "REACHABLE   <- rs1", "sent to rs1 (bypassing the director)",
			"FAIL    arp_ignore 1 or 2", "sysctl -w net.ipv4.conf.all.arp_ignore=1", "REACHABLE   <- director",
			"rr over 3 real servers: rs1=2 rs2=2 rs3=2",
		},
		"forwarding-on": {
			"(the director's kernel: routed, ttl - 1)", "(drlb: only the MACs rewritten)", "refusing to start",
			"blackhole 198.18.0.100",
		},
		"restart": {
			"0 of 6 connections survived", "no answer (silence: the deadline passed)", "6 of 6 connections survived",
			"(the same server)",
		},
		"mtu": {
			"rs1  MTU 1400  SYN-ACK MSS 1360", "rs2  MTU 1500  SYN-ACK MSS 1460", "-> rs1   NO ANSWER within",
			"Captured: 0 ICMP frames", "FAIL    real server 198.18.0.11 MTU 1500", "ip link set dev IFACE mtu 1500",
		},
		"scale-out": {
			"nexthop via 198.18.0.2 dev eth0 weight 1", "nexthop via 198.18.0.3 dev eth0 weight 1",
			"198.18.2.100 via 198.18.0.2 dev eth0 proto bird", "16 of 16 flows: both configs' mh name the server that answered",
			"was via director2", "(the same server)", "reached director2 after the router dropped it: 0.", "no-conn 0",
		},
		"failover": {
			"198.18.0.2 > 224.0.0.18  VRRPv3 advert vrid 51 prio 150 intvl 100ms ttl 255  addrs 198.18.0.100",
			"from director2 (198.18.0.3): 0 (a backup sends none)", "lladdr 02:00:c6:12:00:02 REACHABLE   <- director\n", ", director2 0.",
			`msg="vrrp: BACKUP -> MASTER"`, `reason="no advert from master 198.18.0.2 (priority 150)`, "5 at once, 198.18.0.100 is-at 02:00:c6:12:00:03",
			"lladdr 02:00:c6:12:00:03 STALE   <- director2", "now via director2", "(the same server)", "adopted 6",
		},
	}
	for _, sc := range lab.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			if sc.BGP {
				testutil.NeedTool(t, "bird") // BIRD 2, the router's BGP speaker
			}
			name := labName(t, "s"+strings.ReplaceAll(sc.Name, "-", ""))
			dir := t.TempDir()
			page := filepath.Join(dir, sc.Name+".html")
			t.Cleanup(func() { _ = lab.Down(name, io.Discard) })
			out, code := drlbCmd(t, "lab", "--scenario", sc.Name, "--name", name, "--pcap-dir", dir, "--html", page)
			if code != 0 {
				t.Fatalf("drlb lab --scenario %s exited %d:\n%s%s", sc.Name, code, out, directorLogs(dir))
			}
			want := append([]string{"drlb lab --scenario " + sc.Name, "== 1. The network", "checks passed.", "torn down"}, evidence[sc.Name]...)
			if len(evidence[sc.Name]) == 0 {
				t.Errorf("no evidence listed for scenario %s", sc.Name)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if left := namespacesOf(t, name); len(left) > 0 {
				t.Errorf("namespaces left after the scenario: %v", left)
			}
			checkDrawings(t, page, 2, "router", "director", "rs1")
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
			if sc.Name == "arp-flux" { // one scenario page in a browser too
				t.Run("renders in Chromium", func(t *testing.T) { renderPage(t, absPath(t, page)) })
			}
		})
	}
}

// TestLabScenarioNeedsBIRD: without bird in $PATH, scale-out refuses
// before building anything, in one line naming the package to install.
func TestLabScenarioNeedsBIRD(t *testing.T) {
	testutil.NeedRoot(t) // the root check comes first
	t.Setenv("PATH", t.TempDir())
	out, code := drlbCmd(t, "lab", "--scenario", "scale-out")
	want := "drlb lab: --scenario scale-out: BIRD 2 is not installed (no bird in $PATH): apt-get install bird2\n"
	if code != 1 || out != want {
		t.Errorf("exit %d, output %q; want exit 1, %q", code, out, want)
	}
}

// directorLogs is the directors' logs a scenario left in dir (their last
// line counts what each forwarded and dropped), for a failure's report.
func directorLogs(dir string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range logs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n--- %s:\n%s", filepath.Base(f), data)
	}
	return b.String()
}
