package replay

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestSorryServer replays sessions to a service whose only real server is
// quiesced (weight 0): keepalived's sorry_server takes them, and the
// listing says so.
func TestSorryServer(t *testing.T) {
	cfg, err := config.Parse("sorry.yaml", []byte(`services:
  - vip: 198.18.0.100
    port: 80
    scheduler: rr
    sorry_server: {address: 198.18.0.99, mac: 02:00:00:00:00:99}
    realservers:
      - {address: 198.18.0.11, weight: 0, mac: 02:00:00:00:00:11}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{}
	tcpSession(s, toDirector, clientAt(0, 40000), netip.AddrPortFrom(vip, 80), 0)
	tcpSession(s, toDirector, clientAt(1, 40001), netip.AddrPortFrom(vip, 80), time.Millisecond)
	var in bytes.Buffer
	w := pcapgo.NewWriter(&in)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, f := range s.frames {
		ci := gopacket.CaptureInfo{Timestamp: start.Add(f.at), CaptureLength: len(f.data), Length: len(f.data)}
		if err := w.WritePacket(ci, f.data); err != nil {
			t.Fatal(err)
		}
	}
	var out, listing bytes.Buffer
	sum, err := Run(cfg, bytes.NewReader(in.Bytes()), &out, Options{Listing: &listing, MAC: directorMAC})
	if err != nil {
		t.Fatal(err)
	}
	if sum.ByReason[forwarder.ReasonSorry] != 2 || sum.Forwarded != 10 {
		t.Fatalf("summary %v, want 2 connections sent to the sorry server and all 10 frames forwarded", sum)
	}
	if !strings.Contains(listing.String(), "forward sorry tcp 198.18.1.10:40000 -> 198.18.0.100:80 [S] | service tcp 198.18.0.100:80 (rr) | real server 198.18.0.99 (sorry server) | sent dst 02:00:00:00:00:99") {
		t.Errorf("listing does not show the sorry server:\n%s", listing.String())
	}
	r, err := pcapgo.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if got := data[0:6]; !bytes.Equal(got, []byte{2, 0, 0, 0, 0, 0x99}) {
			t.Fatalf("frame sent to %x, want the sorry server's MAC", got)
		}
	}
	// Without the sorry server's MAC a replay cannot run, and says why.
	cfg.Services[0].SorryServer.MAC = nil
	if _, err := Run(cfg, bytes.NewReader(in.Bytes()), &out, Options{}); err == nil || !strings.Contains(err.Error(), "services[0].sorry_server (198.18.0.99, line 5)") {
		t.Fatalf("Run without the sorry server's MAC: %v", err)
	}
}
