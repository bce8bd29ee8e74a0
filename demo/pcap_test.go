package demo

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestWritePcap(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	frames := []frame{
		parseFrame(at, framegen.TCP(framegen.L2{Src: macRouter, Dst: macDirector}, testClient, testVIP, framegen.SYN, 1, 0, nil)),
		parseFrame(at.Add(time.Millisecond), make([]byte, 9000)), // a super-frame
	}
	path := filepath.Join(t.TempDir(), "x.pcap")
	if err := writePcap(path, frames); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Errorf("link type %v", r.LinkType())
	}
	for i := 0; ; i++ {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			if i != len(frames) {
				t.Fatalf("%d frames read back, want %d", i, len(frames))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, frames[i].data) || !ci.Timestamp.Equal(frames[i].at) {
			t.Errorf("frame %d differs (%v vs %v)", i, ci.Timestamp, frames[i].at)
		}
	}
}

func TestWritePcapBadPath(t *testing.T) {
	if err := writePcap(filepath.Join(t.TempDir(), "no", "such", "x.pcap"), nil); err == nil {
		t.Error("no error for a missing directory")
	}
}
