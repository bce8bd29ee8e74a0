package replay

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
)

// TestRunIdleSweep: live, the director's idle sweeper walks the whole
// connection table every few seconds on its own timer, so after a SYN
// flood that stopped the expired half-open entries leave the table and
// the pressure defence ends; the next SYN is scheduled statefully
// ("new"). A replay that swept only the few slots each frame sweeps kept
// the expired entries counted and placed it without entry
// (syn-stateless), possibly on another real server.
func TestRunIdleSweep(t *testing.T) {
	cfg := loadConfig(t, "rr")
	cfg.MaxConns = 1000
	web := netip.AddrPortFrom(vip, 80)
	var s scenario
	for i := range 600 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 40000)
		s.add(time.Duration(i)*time.Millisecond, framegen.TCP(toDirector, c, web, framegen.SYN, 1, 0, nil))
	}
	s.add(time.Hour, framegen.TCP(toDirector, clientAt(0, 1000), web, framegen.SYN, 1, 0, nil))
	path := t.TempDir() + "/flood.pcap"
	s.write(t, path)
	input, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var listing bytes.Buffer
	if _, err := Run(cfg, bytes.NewReader(input), &bytes.Buffer{}, Options{MAC: directorMAC, Listing: &listing}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(listing.String()), "\n")
	if !strings.Contains(listing.String(), "forward syn-stateless") {
		t.Fatalf("the flood never put the table under pressure:\n%s", lines[len(lines)-1])
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "601 forward new ") {
		t.Errorf("the SYN an hour after the flood: %q, want forward new (the idle sweep emptied the table)", last)
	}
}
