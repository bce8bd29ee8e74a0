package replay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestRunSnapTruncated: a frame the capture cut at its snap length
// (tcpdump -s 96) is replayed as the director received it, with zeros
// for the bytes the capture left out: as it was, it was dropped as
// malformed where live forwarded it, and nothing said why. The output is
// cut where the input was, and the summary says how many were cut. A cut
// frame claiming more than any frame is an input error naming it.
func TestRunSnapTruncated(t *testing.T) {
	web := netip.AddrPortFrom(vip, 80)
	capture := func(lengths ...int) []byte {
		var buf bytes.Buffer
		w := pcapgo.NewWriter(&buf)
		if err := w.WriteFileHeader(96, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		for i, d := range [][]byte{
			framegen.TCP(toDirector, clientAt(0, 1000), web, framegen.SYN, 1, 0, nil),
			framegen.TCP(toDirector, clientAt(1, 1000), web, framegen.SYN, 1, 0, make([]byte, 300)),
		} {
			ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * time.Millisecond), CaptureLength: min(96, len(d)), Length: len(d)}
			if i < len(lengths) && lengths[i] > 0 {
				ci.Length = lengths[i]
			}
			if err := w.WritePacket(ci, d[:ci.CaptureLength]); err != nil {
				t.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	var out bytes.Buffer
	sum, err := Run(loadConfig(t, "rr"), bytes.NewReader(capture()), &out, Options{MAC: directorMAC})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Frames != 2 || sum.Forwarded != 2 || sum.Cut != 1 || !strings.Contains(sum.String(), "1 cut by the capture's snap length") {
		t.Fatalf("got %v (cut %d), want both frames forwarded and one cut", sum, sum.Cut)
	}
	r, err := pcapgo.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	var lens [][2]int
	for {
		_, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		lens = append(lens, [2]int{ci.CaptureLength, ci.Length})
	}
	if want := [][2]int{{60, 60}, {96, 354}}; !slices.Equal(lens, want) {
		t.Errorf("output frames captured/long %v, want %v", lens, want)
	}

	sum, err = Run(loadConfig(t, "rr"), bytes.NewReader(capture(0, 1<<30)), &bytes.Buffer{}, Options{MAC: directorMAC})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "frame 2:") || sum.Frames != 1 {
		t.Fatalf("a cut frame of 1 GiB: got %v (%v), want ErrInput naming frame 2", err, sum)
	}
}

// TestRunOutputSnapLen: a GRO super-frame of the capture (an IP packet of
// 65535 bytes, 65549 with its Ethernet header) is forwarded as live does;
// the output file must declare a snap length that holds it, or tcpdump and
// Wireshark cut its last bytes off when they read it.
func TestRunOutputSnapLen(t *testing.T) {
	var s scenario
	s.add(0, framegen.TCP(toDirector, clientAt(0, 1000), netip.AddrPortFrom(vip, 80), framegen.ACK, 1, 1, make([]byte, 65535-40)))
	path := t.TempDir() + "/gro.pcap"
	s.write(t, path)
	input, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, "sh") // adopts the mid-flow segment
	var out bytes.Buffer
	sum, err := Run(cfg, bytes.NewReader(input), &out, Options{MAC: directorMAC})
	if err != nil || sum.Forwarded != 1 {
		t.Fatalf("%v, %v", sum, err)
	}
	frames := testutil.PcapFrames(t, out.Bytes())
	if snap := binary.LittleEndian.Uint32(out.Bytes()[16:20]); len(frames) != 1 || int(snap) < len(frames[0]) {
		t.Fatalf("output snap length %d, but it holds a %d-byte frame", snap, len(frames[0]))
	}
}

// failingAfter reads r, then fails: a pipe whose writer died.
type failingAfter struct{ r io.Reader }

var errWriterDied = errors.New("writer died")

func (f *failingAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errWriterDied
	}
	return n, err
}

// TestRunWithMACStreams: with the director's MAC given nothing needs the
// capture twice, so a pipe is replayed as it is read, not first read
// whole into memory (a capture of many gigabytes through a FIFO).
func TestRunWithMACStreams(t *testing.T) {
	input, err := os.ReadFile(scenarioPath("mixed"))
	if err != nil {
		t.Fatal(err)
	}
	want := len(testutil.PcapFrames(t, input))
	sum, err := Run(loadConfig(t, "rr"), &failingAfter{bytes.NewReader(input)}, &bytes.Buffer{}, Options{MAC: directorMAC})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), fmt.Sprintf("frame %d: writer died", want+1)) || sum.Frames != want {
		t.Fatalf("got %d frames, %v; want the %d frames replayed before the read failed", sum.Frames, err, want)
	}
}

// TestRunPcapngMixedLinkTypes: a pcapng file of two interfaces (dumpcap
// -i eth0 -i any) holds frames that are not Ethernet. They were skipped
// without a word (libpcap's way), so the listing's frame numbers no
// longer matched Wireshark's and the summary did not count them; each is
// now an input error naming its frame and interface.
func TestRunPcapngMixedLinkTypes(t *testing.T) {
	web := netip.AddrPortFrom(vip, 80)
	capture := func(second layers.LinkType) []byte {
		var buf bytes.Buffer
		w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, TimestampResolution: 9}, pcapgo.DefaultNgWriterOptions)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.AddInterface(pcapgo.NgInterface{Name: "lo", LinkType: second, TimestampResolution: 6}); err != nil {
			t.Fatal(err)
		}
		for i, iface := range []int{0, 1, 0} {
			d := framegen.TCP(toDirector, clientAt(i, 1000), web, framegen.SYN, 1, 0, nil)
			ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i)*time.Millisecond + 7), CaptureLength: len(d), Length: len(d), InterfaceIndex: iface}
			if err := w.WritePacket(ci, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	var out bytes.Buffer
	sum, err := Run(loadConfig(t, "rr"), bytes.NewReader(capture(layers.LinkTypeEthernet)), &out, Options{MAC: directorMAC})
	if err != nil || sum.Frames != 3 || sum.Forwarded != 3 {
		t.Fatalf("two Ethernet interfaces: %v, %v; want 3 frames forwarded", sum, err)
	}
	sum, err = Run(loadConfig(t, "rr"), bytes.NewReader(capture(layers.LinkTypeLinuxSLL)), &bytes.Buffer{}, Options{MAC: directorMAC})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "frame 2: interface 1: link type") || sum.Frames != 1 {
		t.Fatalf("a Linux SLL interface: got %v (%v), want ErrInput naming frame 2 and interface 1", err, sum)
	}
}

// TestRunOverlongFrame: a whole frame longer than the largest frame
// (a pcap whose header declares a snap length past libpcap's, a pcapng
// file, which has none) was forwarded and written into an output whose
// snap length it exceeds: tcpdump and Wireshark refuse such a file. It
// is an input error naming the frame, as a cut one of that length is.
func TestRunOverlongFrame(t *testing.T) {
	d := framegen.TCP(toDirector, clientAt(0, 1000), netip.AddrPortFrom(vip, 80), framegen.SYN, 1, 0, nil)
	long := append(d, make([]byte, outSnapLen+100-len(d))...) // Ethernet padding past the IP packet
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(1<<20, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, f := range [][]byte{d, long} {
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	sum, err := Run(loadConfig(t, "rr"), bytes.NewReader(buf.Bytes()), &out, Options{MAC: directorMAC})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "frame 2:") || sum.Frames != 1 {
		t.Fatalf("got %v (%v), want ErrInput naming frame 2", err, sum)
	}
	for _, f := range testutil.PcapFrames(t, out.Bytes()) {
		if len(f) > outSnapLen {
			t.Fatalf("wrote a %d-byte frame under a snap length of %d", len(f), outSnapLen)
		}
	}
}
