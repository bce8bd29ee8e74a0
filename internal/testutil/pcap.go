package testutil

import (
	"bytes"
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
	return readPcap(t, f, path)
}

// PcapFrames reads every frame of a pcap file held in memory (a replay's
// output, a golden file) and returns their bytes, with the same checks as
// ReadPcap.
func PcapFrames(t testing.TB, pcap []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range readPcap(t, bytes.NewReader(pcap), "pcap") {
		out = append(out, p.Data)
	}
	return out
}

func readPcap(t testing.TB, in io.Reader, name string) []Packet {
	t.Helper()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatalf("testutil: %s: %v", name, err)
	}
	if lt := r.LinkType(); lt != layers.LinkTypeEthernet {
		t.Fatalf("testutil: %s: link type %v, want Ethernet", name, lt)
	}
	var out []Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("testutil: %s: frame %d: %v", name, len(out)+1, err)
		}
		out = append(out, Packet{Data: append([]byte(nil), data...), Time: ci.Timestamp})
	}
}
