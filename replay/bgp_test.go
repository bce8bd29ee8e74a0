package replay

import (
	"bytes"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/step"
)

// TestDirectorsBehindECMPAgree replays one capture through the configs of
// two directors behind the same router (issue 13): the same services,
// real servers listed in another order, another BGP router ID. With sh and
// mh they must send every frame to the same real server, byte for byte,
// so a flow the router moves between them survives.
func TestDirectorsBehindECMPAgree(t *testing.T) {
	input, err := os.ReadFile(scenarioPath("mixed"))
	if err != nil {
		t.Fatal(err)
	}
	director := func(sched, routerID string, reverse bool) *config.Config {
		cfg := loadConfig(t, sched)
		for i := range cfg.Services {
			if reverse {
				slices.Reverse(cfg.Services[i].RealServers)
			}
		}
		cfg.BGP = &config.BGP{ASN: 65001, RouterID: netip.MustParseAddr(routerID), HoldTime: 9 * time.Second, MinRealServers: 1,
			Peers: []config.BGPPeer{{Address: netip.MustParseAddr("198.18.0.1"), ASN: 65000, Port: 179}}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for _, sched := range []string{"sh", "mh"} {
		t.Run(sched, func(t *testing.T) {
			var out1, out2, plain bytes.Buffer
			s1, err := Run(director(sched, "198.18.0.2", false), bytes.NewReader(input), &out1, Options{MTU: goldenMTU})
			if err != nil {
				t.Fatal(err)
			}
			s2, err := Run(director(sched, "198.18.0.3", true), bytes.NewReader(input), &out2, Options{MTU: goldenMTU})
			if err != nil {
				t.Fatal(err)
			}
			if s1.Forwarded == 0 {
				t.Fatalf("nothing forwarded: %v", s1)
			}
			if !bytes.Equal(out1.Bytes(), out2.Bytes()) {
				t.Errorf("the two directors' outputs differ (%d and %d bytes):\n%v\n%v", out1.Len(), out2.Len(), s1, s2)
			}
			if n := s1.Answers[step.ARPReply] + s1.Answers[step.NeighborAdvert]; n > 0 {
				t.Errorf("a BGP director answered %d ARP/NDP requests: the router must route the VIP", n)
			}
			// Forwarded frames are those of a director on the LAN.
			if _, err := Run(loadConfig(t, sched), bytes.NewReader(input), &plain, Options{MTU: goldenMTU, ForwardedOnly: true}); err != nil {
				t.Fatal(err)
			}
			var fwd bytes.Buffer
			if _, err := Run(director(sched, "198.18.0.2", false), bytes.NewReader(input), &fwd, Options{MTU: goldenMTU, ForwardedOnly: true}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain.Bytes(), fwd.Bytes()) {
				t.Error("bgp: changes what is forwarded")
			}
		})
	}
}
