package lab

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
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
	got := testutil.ReadPcap(t, path)
	if len(got) != len(frames) {
		t.Fatalf("%d frames read back, want %d", len(got), len(frames))
	}
	for i, p := range got {
		if !bytes.Equal(p.Data, frames[i].data) || !p.Time.Equal(frames[i].at) {
			t.Errorf("frame %d differs (%v vs %v)", i, p.Time, frames[i].at)
		}
	}
}

func TestWritePcapBadPath(t *testing.T) {
	if err := writePcap(filepath.Join(t.TempDir(), "no", "such", "x.pcap"), nil); err == nil {
		t.Error("no error for a missing directory")
	}
}
