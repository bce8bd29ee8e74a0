package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func writeTestPcap(t *testing.T, lt layers.LinkType, frames ...[]byte) (string, time.Time) {
	t.Helper()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: at.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "x.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, at
}

func TestReadPcap(t *testing.T) {
	a, b := bytes.Repeat([]byte{1}, 60), bytes.Repeat([]byte{2}, 9000)
	path, at := writeTestPcap(t, layers.LinkTypeEthernet, a, b)
	got := ReadPcap(t, path)
	if len(got) != 2 || !bytes.Equal(got[0].Data, a) || !bytes.Equal(got[1].Data, b) ||
		!got[0].Time.Equal(at) || !got[1].Time.Equal(at.Add(time.Millisecond)) {
		t.Fatalf("read back %d frames: %+v", len(got), got)
	}
	empty, _ := writeTestPcap(t, layers.LinkTypeEthernet)
	if got := ReadPcap(t, empty); len(got) != 0 {
		t.Errorf("an empty capture gave %d frames", len(got))
	}
}

func TestReadPcapFails(t *testing.T) {
	raw, _ := writeTestPcap(t, layers.LinkTypeRaw, []byte{0x45})
	good, _ := writeTestPcap(t, layers.LinkTypeEthernet, make([]byte, 60))
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, b[:len(b)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		raw:                                  "want Ethernet",
		cut:                                  "frame 1",
		filepath.Join(t.TempDir(), "nosuch"): "no such file",
	} {
		f := runFake(t, func(tb testing.TB) { ReadPcap(tb, path) })
		if !strings.Contains(f.failed, want) {
			t.Errorf("ReadPcap(%s) failed with %q, want it to say %q", filepath.Base(path), f.failed, want)
		}
	}
}
