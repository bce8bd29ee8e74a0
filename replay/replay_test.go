package replay

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/step"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var update = flag.Bool("update", false, "regenerate the scenario pcaps and golden outputs under testdata/")

var goldenSchedulers = []string{"rr", "wrr", "wlc", "sh", "mh"}

// goldenMTU makes the scenarios' oversized frames draw too-big replies.
const goldenMTU = 1500

func loadConfig(t testing.TB, sched string) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "testdata", "replay", "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Services {
		cfg.Services[i].Scheduler = sched
	}
	return cfg
}

// TestGolden replays each scenario with each scheduler and compares the
// output pcap and the verdict listing with testdata/replay/golden.
func TestGolden(t *testing.T) {
	for name, build := range scenarios {
		in := scenarioPath(name)
		if *update {
			build().write(t, in)
		}
		input, err := os.ReadFile(in)
		if err != nil {
			t.Fatalf("%v (run go test ./replay -update to generate)", err)
		}
		for _, sched := range goldenSchedulers {
			t.Run(name+"/"+sched, func(t *testing.T) {
				var out, listing bytes.Buffer
				sum, err := Run(loadConfig(t, sched), bytes.NewReader(input), &out, Options{Listing: &listing, MTU: goldenMTU})
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(&listing, sum)
				checkInvariants(t, input, out.Bytes(), listing.String())
				base := filepath.Join("..", "testdata", "replay", "golden", name+"."+sched)
				golden(t, base+".pcap", out.Bytes())
				golden(t, base+".txt", listing.Bytes())
			})
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./replay -update to generate)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run go test ./replay -update and review the diff", path)
		if strings.HasSuffix(path, ".txt") {
			t.Logf("got:\n%s", got)
		}
	}
}

// checkInvariants holds for every replay: only the MACs change (plus a
// completed checksum where the listing says so), every forwarded frame goes
// to a real server of its service, one flow goes to one real server, and
// the output holds exactly the forwarded frames and the director's own
// answers the listing names (ARP replies, neighbor advertisements, too-big
// replies), each checked for what it must say, in order.
func checkInvariants(t *testing.T, input, output []byte, listing string) {
	t.Helper()
	in, out := testutil.PcapFrames(t, input), testutil.PcapFrames(t, output)
	lines := strings.Split(strings.TrimSpace(listing), "\n")
	lines = lines[:len(lines)-1] // the summary
	if len(lines) != len(in) {
		t.Fatalf("%d listing lines for %d frames", len(lines), len(in))
	}
	rsMAC := map[string]bool{"02:00:00:00:00:11": true, "02:00:00:00:00:12": true, "02:00:00:00:00:13": true}
	owner := map[string]string{}
	o := 0
	for i, line := range lines {
		if !strings.HasPrefix(line, fmt.Sprintf("%d ", i+1)) {
			t.Fatalf("listing line %d: %q", i+1, line)
		}
		action := strings.Fields(line)[1]
		if action != "forward" && action != "answer" {
			continue
		}
		if o >= len(out) {
			t.Fatalf("frame %d: %s but nothing in the output", i+1, action)
		}
		got, orig := out[o], in[i]
		o++
		if action == "answer" {
			checkAnswer(t, i+1, strings.Fields(line)[2], orig, got)
			continue
		}
		if len(got) != len(orig) {
			t.Fatalf("frame %d: length %d, input %d", i+1, len(got), len(orig))
		}
		if !bytes.Equal(got[6:12], orig[0:6]) {
			t.Errorf("frame %d: source MAC %x is not the director's %x", i+1, got[6:12], orig[0:6])
		}
		mac := fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", got[0], got[1], got[2], got[3], got[4], got[5])
		if !rsMAC[mac] {
			t.Errorf("frame %d: destination MAC %s is no real server", i+1, mac)
		}
		if !strings.Contains(line, "(checksum completed)") && !bytes.Equal(got[12:], orig[12:]) {
			t.Errorf("frame %d: changed beyond the MACs", i+1)
		}
		if k, ok := flowKey(orig); ok {
			if prev, seen := owner[k]; seen && prev != mac && !strings.Contains(line, " forward reused ") {
				t.Errorf("frame %d: flow %s moved from %s to %s", i+1, k, prev, mac)
			}
			owner[k] = mac
		}
	}
	if o != len(out) {
		t.Errorf("output has %d frames, the listing forwards or answers %d", len(out), o)
	}
}

// checkAnswer checks one of the director's own frames against the frame
// it answers: back to the asker's MAC from the director's, saying the
// right thing.
func checkAnswer(t *testing.T, n int, kind string, asked, got []byte) {
	t.Helper()
	if !bytes.Equal(got[0:6], asked[6:12]) || !bytes.Equal(got[6:12], directorMAC) {
		t.Errorf("frame %d: %s from %x to %x, want from the director %x to the asker %x", n, kind, got[6:12], got[0:6], directorMAC, asked[6:12])
	}
	pkt := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("frame %d: %s does not decode: %v", n, kind, el.Error())
	}
	q := gopacket.NewPacket(asked, layers.LayerTypeEthernet, gopacket.Default)
	switch kind {
	case "arp-reply":
		a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
		req, _ := q.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok || req == nil || a.Operation != layers.ARPReply || !bytes.Equal(a.SourceHwAddress, directorMAC) ||
			!bytes.Equal(a.SourceProtAddress, req.DstProtAddress) || !bytes.Equal(a.DstProtAddress, req.SourceProtAddress) {
			t.Errorf("frame %d: not an ARP reply for the asked VIP with the director's MAC: %v", n, pkt)
		}
	case "neighbor-advert":
		na, ok := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		ns, _ := q.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
		if !ok || ns == nil || !na.TargetAddress.Equal(ns.TargetAddress) || !na.Solicited() {
			t.Errorf("frame %d: not a solicited advertisement for the asked VIP: %v", n, pkt)
		}
	case "too-big":
		nl, qnl := pkt.NetworkLayer(), q.NetworkLayer()
		if nl == nil || qnl == nil || nl.NetworkFlow() != qnl.NetworkFlow().Reverse() {
			t.Fatalf("frame %d: too-big reply not from the VIP back to the sender: %v", n, pkt)
		}
		var quoted []byte
		if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok && ic.TypeCode == layers.CreateICMPv4TypeCode(3, 4) {
			quoted = ic.Payload
		} else if ic, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok && ic.TypeCode.Type() == layers.ICMPv6TypePacketTooBig {
			quoted = ic.Payload[4:]
		} else {
			t.Fatalf("frame %d: neither fragmentation-needed nor packet-too-big: %v", n, pkt)
		}
		ipIn := framegen.IPPacket(asked)
		if len(quoted) < 28 || !bytes.Equal(quoted, ipIn[:len(quoted)]) {
			t.Errorf("frame %d: too-big reply does not quote the refused packet", n)
		}
	default:
		t.Errorf("frame %d: unknown answer %q", n, kind)
	}
}

func TestRunErrors(t *testing.T) {
	cfg := loadConfig(t, "rr")
	input, err := os.ReadFile(scenarioPath("mixed"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("not a capture", func(t *testing.T) {
		_, err := Run(cfg, strings.NewReader("hello, not a pcap file at all"), &bytes.Buffer{}, Options{})
		if !errors.Is(err, ErrInput) {
			t.Fatalf("got %v, want ErrInput", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		_, err := Run(cfg, strings.NewReader(""), &bytes.Buffer{}, Options{})
		if !errors.Is(err, ErrInput) {
			t.Fatalf("got %v, want ErrInput", err)
		}
	})
	t.Run("truncated capture", func(t *testing.T) {
		sum, err := Run(cfg, bytes.NewReader(input[:len(input)-7]), &bytes.Buffer{}, Options{})
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "frame") {
			t.Fatalf("got %v, want ErrInput naming the frame", err)
		}
		if sum.Frames == 0 {
			t.Fatal("frames before the damage were not replayed")
		}
	})
	t.Run("real server without mac", func(t *testing.T) {
		c := loadConfig(t, "rr")
		c.Services[1].RealServers[2].MAC = nil
		_, err := Run(c, bytes.NewReader(input), &bytes.Buffer{}, Options{})
		if !errors.Is(err, ErrNoMAC) || !strings.Contains(err.Error(), "services[1].realservers[2]") {
			t.Fatalf("got %v, want ErrNoMAC naming services[1].realservers[2]", err)
		}
	})
}

// TestSummaryCounts checks the mixed scenario's verdicts add up and that
// the interesting cases happened at all (so the goldens cannot go stale
// into testing nothing).
func TestSummaryCounts(t *testing.T) {
	input, err := os.ReadFile(scenarioPath("mixed"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sched := range goldenSchedulers {
		sum, err := Run(loadConfig(t, sched), bytes.NewReader(input), &bytes.Buffer{}, Options{MTU: goldenMTU})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Forwarded+sum.Answered+sum.Passed+sum.Dropped != sum.Frames {
			t.Fatalf("%s: %+v does not add up", sched, sum)
		}
		for _, k := range []step.Kind{step.ARPReply, step.NeighborAdvert} {
			if sum.Answers[k] != 1 {
				t.Errorf("%s: %d %s, want 1: %v", sched, sum.Answers[k], k, sum)
			}
		}
		if sum.Answers[step.TooBig] != 2 {
			t.Errorf("%s: %d too-big replies, want 2 (IPv4 and IPv6): %v", sched, sum.Answers[step.TooBig], sum)
		}
		if !bytes.Equal(sum.DirectorMAC, directorMAC) {
			t.Errorf("%s: learnt director MAC %v, want %v", sched, sum.DirectorMAC, directorMAC)
		}
		must := []forwarder.Reason{forwarder.ReasonNew, forwarder.ReasonExisting, forwarder.ReasonICMP,
			forwarder.ReasonFragment, forwarder.ReasonReused, forwarder.ReasonNotIP, forwarder.ReasonNotVIP,
			forwarder.ReasonMalformed, forwarder.ReasonNoService, forwarder.ReasonUnsupported,
			forwarder.ReasonOwnFrame, forwarder.ReasonTooBig}
		if forwarder.Reason(0) == 0 && (sched == "sh" || sched == "mh") {
			must = append(must, forwarder.ReasonAdopted)
		} else {
			must = append(must, forwarder.ReasonNoConn, forwarder.ReasonFragNoFirst)
		}
		for _, r := range must {
			if sum.ByReason[r] == 0 {
				t.Errorf("%s: no frame with reason %s: %v", sched, r, sum)
			}
		}
		if sum.ChecksumsCompleted != 3 {
			t.Errorf("%s: %d checksums completed, want 3", sched, sum.ChecksumsCompleted)
		}
	}
}

// TestRunFromPipe: a capture read from a pipe (drlb replay -in /dev/stdin,
// or a process substitution) replays without -mac: learning the
// director's MAC reads it twice, and a pipe is an *os.File that cannot
// seek.
func TestRunFromPipe(t *testing.T) {
	input, err := os.ReadFile(scenarioPath("mixed"))
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.Write(input)
		w.Close()
	}()
	sum, err := Run(loadConfig(t, "rr"), r, &bytes.Buffer{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.DirectorMAC == nil || sum.Forwarded == 0 {
		t.Fatalf("from a pipe: %v", sum)
	}
}

// TestRunOtherDirectorsFrames: without -mac, frames sent to another MAC
// than the director's (a second director's, flooded unicast) are passed
// as not-ours, as live and as with -mac; they used to be forwarded, and
// took scheduler turns that moved later decisions.
func TestRunOtherDirectorsFrames(t *testing.T) {
	other := toDirector
	other.Dst = net.HardwareAddr{2, 0, 0, 0, 0, 3}
	web := netip.AddrPortFrom(vip, 80)
	var s scenario
	s.add(0, framegen.TCP(toDirector, clientAt(0, 1), web, framegen.SYN, 1, 0, nil))
	s.add(time.Millisecond, framegen.TCP(toDirector, clientAt(1, 1), web, framegen.SYN, 1, 0, nil))
	s.add(2*time.Millisecond, framegen.TCP(other, clientAt(2, 1), web, framegen.SYN, 1, 0, nil))
	path := filepath.Join(t.TempDir(), "two.pcap")
	s.write(t, path)
	run := func(opts Options) Summary {
		in, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		sum, err := Run(loadConfig(t, "rr"), in, &bytes.Buffer{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	learnt, given := run(Options{}), run(Options{MAC: directorMAC})
	if learnt.Forwarded != 2 || learnt.String() != given.String() {
		t.Fatalf("learnt MAC %v: %v\nwith -mac: %v", learnt.DirectorMAC, learnt, given)
	}
}

// TestLearnDirectorMACTie: with as many frames to each of two MACs, the
// MAC seen first is the director's, as DirectorMAC's documentation says;
// it was the one that reached the count first (here the second).
func TestLearnDirectorMACTie(t *testing.T) {
	other := toDirector
	other.Dst = net.HardwareAddr{2, 0, 0, 0, 0, 3}
	web := netip.AddrPortFrom(vip, 80)
	var s scenario
	for i, l2 := range []framegen.L2{toDirector, other, other, toDirector} {
		s.add(time.Duration(i)*time.Millisecond, framegen.TCP(l2, clientAt(i, 1), web, framegen.SYN, 1, 0, nil))
	}
	path := filepath.Join(t.TempDir(), "tie.pcap")
	s.write(t, path)
	input, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(loadConfig(t, "rr"), bytes.NewReader(input), &bytes.Buffer{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sum.DirectorMAC, directorMAC) {
		t.Fatalf("learnt %v, want %v (seen first, as many frames)", sum.DirectorMAC, directorMAC)
	}
}
