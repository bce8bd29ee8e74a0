package control

import (
	"bytes"
	"io"
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
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`drlb_bgp_peer_up{asn="65000",peer="198.18.0.1"} 1`,
		`drlb_bgp_peer_state{peer="198.18.0.1",state="established"} 1`,
		`drlb_bgp_vip_announced{vip="198.18.2.100"} 1`,
		`drlb_bgp_vip_announced{vip="198.18.2.101"} 0`,
		`drlb_bgp_vip_usable_realservers{vip="198.18.2.100"} 3`,
		"drlb_bgp_drained 0",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, body := range []string{`{"drain": true}`, `{"drain": false}`} {
		resp, err := http.Post(srv.URL+"/v1/bgp", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("POST /v1/bgp %s: %s", body, resp.Status)
		}
	}
	if len(drained) != 2 || !drained[0] || drained[1] {
		t.Errorf("drain calls %v, want [true false]", drained)
	}
}
