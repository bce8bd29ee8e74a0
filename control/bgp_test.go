package control

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func bgpSnapshot() Snapshot {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	return Snapshot{Time: now, BGP: &BGPStatus{MinRealServers: 1,
		Peers: []BGPPeer{{Address: netip.MustParseAddr("198.18.0.1"), ASN: 65000, State: "established", Since: now.Add(-90 * time.Second), HoldTime: 3}},
		VIPs: []BGPVIP{
			{VIP: netip.MustParseAddr("198.18.2.100"), NextHop: netip.MustParseAddr("198.18.0.2"), Usable: 3, Announced: true},
			{VIP: netip.MustParseAddr("198.18.2.101"), NextHop: netip.MustParseAddr("198.18.0.2"), Why: "too few usable real servers"},
		}}}
}

func TestWriteBGP(t *testing.T) {
	var b bytes.Buffer
	WriteBGP(&b, bgpSnapshot())
	want := `BGP announcing, at least 1 usable real server(s) per service
Peer                         AS         State        Since
198.18.0.1                   65000      established  1m30s
VIP                          Announced  Usable Next hop / why not
198.18.2.100                 yes        3      198.18.0.2
198.18.2.101                 no         0      too few usable real servers
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	WriteBGP(&b, Snapshot{})
	if b.Len() != 0 {
		t.Errorf("without BGP: %q", b.String())
	}
}

func TestBGPMetricsAndDrain(t *testing.T) {
	var drained []bool
	h := WithBGP(Handler(func(bool) Snapshot { return bgpSnapshot() }, nil, nil), func(on bool) error {
		drained = append(drained, on)
		return nil
	})
	// The handler called directly: no socket, no traffic.
	serve := func(method, path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		return rec
	}
	body := serve(http.MethodGet, "/metrics", "").Body.String()
	for _, want := range []string{
		`drlb_bgp_peer_up{asn="65000",peer="198.18.0.1"} 1`,
		`drlb_bgp_peer_state{peer="198.18.0.1",state="established"} 1`,
		`drlb_bgp_vip_announced{vip="198.18.2.100"} 1`,
		`drlb_bgp_vip_announced{vip="198.18.2.101"} 0`,
		`drlb_bgp_vip_usable_realservers{vip="198.18.2.100"} 3`,
		"drlb_bgp_drained 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, body := range []string{`{"drain": true}`, `{"drain": false}`} {
		if rec := serve(http.MethodPost, "/v1/bgp", body); rec.Code != http.StatusOK {
			t.Errorf("POST /v1/bgp %s: %d %s", body, rec.Code, rec.Body.String())
		}
	}
	if len(drained) != 2 || !drained[0] || drained[1] {
		t.Errorf("drain calls %v, want [true false]", drained)
	}
}

// TestIpvsadmListBGP: with bgp:, -L ends its table with the BGP side
// (testdata/ipvsadm-Ln-bgp.golden); the table above it, and the other
// layouts, stay the goldens of a director without bgp: byte for byte.
func TestIpvsadmListBGP(t *testing.T) {
	cfg := fixtureConfig(t)
	s := fixtureSnapshot()
	st := bgpSnapshot().BGP
	st.ASN, st.RouterID = 65001, netip.MustParseAddr("198.18.0.2")
	st.Peers = append(st.Peers, BGPPeer{Address: netip.MustParseAddr("198.18.0.3"), ASN: 65000, State: "active", Since: fixtureTime.Add(-12 * time.Second)},
		BGPPeer{Address: netip.MustParseAddr("2001:2::1"), ASN: 65000, State: "idle"})
	st.Peers[0].Since = fixtureTime.Add(-5*time.Minute - 900*time.Millisecond)
	st.VIPs[0].Usable = 1
	st.VIPs = append(st.VIPs, BGPVIP{VIP: netip.MustParseAddr("2001:2:0:2::100"), NextHop: netip.MustParseAddr("2001:2::2"), Usable: 2, Announced: true})
	s.BGP = st
	list := func(args string, s Snapshot) string {
		t.Helper()
		c, err := parseCommand(strings.Fields(args))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := writeIpvsadmList(&b, s, nil, cfg, c.list); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	got := list("-L -n", s)
	golden(t, "ipvsadm-Ln-bgp.golden", got)
	table, section, ok := strings.Cut(got, "\n\n")
	if !ok || !strings.HasPrefix(section, "BGP AS 65001 router-id 198.18.0.2\n") {
		t.Fatalf("no BGP section after a blank line:\n%s", got)
	}
	without := list("-L -n", fixtureSnapshot())
	if table+"\n" != without {
		t.Errorf("the table above the BGP section differs from the one without bgp:\n%s\n--- without:\n%s", table, without)
	}
	for _, args := range []string{"-L -n --stats", "-L -n --thresholds", "-L -n -t 198.18.0.100:443"} {
		if a, b := list(args, s), list(args, fixtureSnapshot()); a != b {
			t.Errorf("%s: the BGP section leaked into this layout:\n%s", args, a)
		}
	}
	st.Drained = true
	if got := list("-L -n", s); !strings.Contains(got, "\nBGP AS 65001 router-id 198.18.0.2 drained (everything withdrawn: drlb ctl bgp undrain)\n") {
		t.Errorf("drained: %s", got)
	}
}
