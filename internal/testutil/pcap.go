package testutil

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Packet is one frame read back from a pcap file.
type Packet struct {
	Data []byte
	Time time.Time
}

// ReadPcap reads every frame of the pcap file at path. It fails the test if
// the file cannot be read to its end or does not hold Ethernet frames.
func ReadPcap(t testing.TB, path string) []Packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("testutil: %s: %v", path, err)
	}
	if lt := r.LinkType(); lt != layers.LinkTypeEthernet {
		t.Fatalf("testutil: %s: link type %v, want Ethernet", path, lt)
	}
	var out []Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("testutil: %s: frame %d: %v", path, len(out)+1, err)
		}
		out = append(out, Packet{Data: data, Time: ci.Timestamp})
	}
}
