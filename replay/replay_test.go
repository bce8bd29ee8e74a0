package replay

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
)

var update = flag.Bool("update", false, "regenerate the scenario pcaps and golden outputs under testdata/")

var goldenSchedulers = []string{"rr", "wrr", "wlc", "sh", "mh"}

func loadConfig(t *testing.T, sched string) *config.Config {
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
				sum, err := Run(loadConfig(t, sched), bytes.NewReader(input), &out, Options{Listing: &listing})
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
// nothing the listing does not forward is in the output.
func checkInvariants(t *testing.T, input, output []byte, listing string) {
	t.Helper()
	in, out := readPcap(t, input), readPcap(t, output)
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
		if !strings.Contains(line, " forward ") {
			continue
		}
		if o >= len(out) {
			t.Fatalf("frame %d forwarded but missing from the output", i+1)
		}
		got, orig := out[o], in[i]
		o++
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
		t.Errorf("output has %d frames, listing forwards %d", len(out), o)
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
		sum, err := Run(loadConfig(t, sched), bytes.NewReader(input), &bytes.Buffer{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Forwarded+sum.Passed+sum.Dropped != sum.Frames {
			t.Fatalf("%s: %+v does not add up", sched, sum)
		}
		must := []forwarder.Reason{forwarder.ReasonNew, forwarder.ReasonExisting, forwarder.ReasonICMP,
			forwarder.ReasonFragment, forwarder.ReasonReused, forwarder.ReasonNotIP, forwarder.ReasonNotVIP,
			forwarder.ReasonMalformed, forwarder.ReasonNoService, forwarder.ReasonUnsupported}
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
