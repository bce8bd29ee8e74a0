package lab

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
)

// TestRestartDiagramUnansweredFirst: connection #1 got no answer before
// the restart (no real server to name), and its request after the restart
// was captured at the director and dropped. The drawing must say so, not
// panic on the missing real server (it is drawn just before the check
// table, which a panic would never print).
func TestRestartDiagramUnansweredFirst(t *testing.T) {
	l := testLab()
	restarted := time.Unix(1000, 0)
	client := netip.AddrPortFrom(l.Client.IPv4, 40000)
	vip := netip.AddrPortFrom(l.VIP, 80)
	get := framegen.TCP(framegen.L2{Src: l.Router.MAC, Dst: l.Director.MAC}, client, vip, "PA", 1, 1, []byte("GET / HTTP/1.1\r\n\r\n"))
	c := &capture{host: l.Director, iface: l.Director.Iface}
	cs := &captures{caps: []*capture{c}, frames: map[*capture][]frame{c: {parseFrame(restarted.Add(time.Second), get)}}}
	run := &restartResult{sched: "rr", cs: cs, ports: []uint16{40000}, servers: []string{""}, after: []string{""}, restarted: restarted}
	r := &runner{l: l}
	svg := r.restartDiagram(run).svg()
	if texts := svgTexts(t, svg); !strings.Contains(strings.Join(texts, "\n"), "dropped (no-conn)") {
		t.Errorf("the drop after the restart is not drawn: %q", texts)
	}
}

// TestNarration: the director's -trace lines for the walked request, the
// later ones one line each. A line without " | " (a drop before any
// service was found) must not panic, and a two-part line keeps its second
// part.
func TestNarration(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "director.log")
	key := "198.18.1.10:40000"
	lines := []string{
		"trace: forward new tcp " + key + " -> 198.18.0.100:80 [S] | service tcp 198.18.0.100:80 (wrr) | real server 198.18.0.11 | sent dst a src b, IP packet unchanged",
		"trace: forward existing tcp " + key + " -> 198.18.0.100:80 [.] | service tcp 198.18.0.100:80 (wrr) | real server 198.18.0.11 | sent dst a src b, IP packet unchanged",
		"trace: pass not-ours tcp " + key + " -> 198.18.0.100:80 [.] | left to the kernel",
		"trace: drop malformed tcp " + key + " -> 198.18.0.100:80 [.]",
	}
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &runner{w: &out, logPath: log, dproc: &directorProc{log: log}}
	r.narration(netip.MustParseAddrPort(key))
	for _, want := range []string{
		"forward existing tcp " + key + " -> 198.18.0.100:80 [.] | real server 198.18.0.11",
		"pass not-ours tcp " + key + " -> 198.18.0.100:80 [.] | left to the kernel",
		"drop malformed tcp " + key + " -> 198.18.0.100:80 [.]",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("narration lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCopiesDiagramBlackholeOnlyAfterFix: one copy of the SYN at rs1
// before the fix means the trap did not show; the drawing must not blame
// a blackhole route that was not there yet.
func TestCopiesDiagramBlackholeOnlyAfterFix(t *testing.T) {
	l := testLab()
	rs1 := l.RealServers[0]
	client := netip.AddrPortFrom(l.Client.IPv4, 40000)
	vip := netip.AddrPortFrom(l.VIP, 80)
	at := time.Unix(1000, 0)
	syn := parseFrame(at, framegen.TCP(framegen.L2{Src: l.Director.MAC, Dst: rs1.MAC}, client, vip, framegen.SYN, 1, 0, nil))
	c := &capture{host: l.Director, iface: l.Director.Iface}
	res := func() *copiesResult {
		return &copiesResult{cs: &captures{caps: []*capture{c}, frames: map[*capture][]frame{}},
			answers: []answer{{port: 40000, server: "rs1"}}, syn: []*frame{&syn}, synTTL: syn.ttl}
	}
	r := &runner{l: l}
	texts := svgTexts(t, r.copiesDiagram(res(), res()).svg())
	n := 0
	for _, s := range texts {
		if strings.Contains(s, "blackhole route, dropped") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d blackhole stubs, want 1 (after the fix only): %q", n, texts)
	}
}

// TestFinishFailsOnCaptureLoss: every check reads the captures, and one
// that finds nothing ("0 frames from the VIP on the director") proves
// nothing over a capture that missed frames. A capture's losses (the
// kernel's drops, frames over maxFrames) fail the run; none, and it
// passes as before.
func TestFinishFailsOnCaptureLoss(t *testing.T) {
	l := testLab()
	for _, tc := range []struct {
		name    string
		dropped int
		want    bool
	}{{"complete", 0, true}, {"frames missed", 3, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := &runner{w: &out, l: l, dir: t.TempDir()}
			c := &capture{host: l.Director, iface: l.Director.Iface, dropped: tc.dropped}
			cs := &captures{caps: []*capture{c}, frames: map[*capture][]frame{c: nil}}
			r.savePcaps(cs, "")
			r.finish()
			for _, c := range r.checks {
				if c.name == "pcaps saved" && c.ok != tc.want {
					t.Errorf("%d frames missed: %q ok=%v (%s), want %v", tc.dropped, c.name, c.ok, c.detail, tc.want)
				}
			}
			if r.checks.failed() == tc.want {
				t.Errorf("%d frames missed: run failed=%v\n%s", tc.dropped, r.checks.failed(), out.String())
			}
		})
	}
}

// TestTakeoverGARPs: the failover check counts the new master's
// gratuitous ARP, sent after the kill; the same frames from that director
// before the kill (as a backup, which must announce nothing) are not its
// takeover's, and counting them let the check pass on the wrong frames.
func TestTakeoverGARPs(t *testing.T) {
	l := testLab()
	d2 := l.RealServers[1] // any host with a MAC: the backup here
	killed := time.Unix(1000, 0)
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	garp := framegen.ARPRequest(framegen.L2{Src: d2.MAC, Dst: bcast}, l.VIP, l.VIP)
	var lan []frame
	for i := range 5 {
		lan = append(lan, parseFrame(killed.Add(-time.Second+time.Duration(i)*time.Millisecond), garp))
	}
	if got := takeoverGARPs(lan, d2.MAC, l.VIP, killed); len(got) != 0 {
		t.Errorf("%d gratuitous ARP sent before the kill counted as the takeover's", len(got))
	}
	lan = append(lan, parseFrame(killed.Add(time.Second), garp))
	if got := takeoverGARPs(lan, d2.MAC, l.VIP, killed); len(got) != 1 || !got[0].at.After(killed) {
		t.Errorf("takeover gratuitous ARP: %d frames, want the 1 after the kill", len(got))
	}
}
