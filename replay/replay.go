package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/pktfmt"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ErrInput is wrapped by errors about the input capture (not a pcap or
// pcapng file, not Ethernet).
var ErrInput = errors.New("replay: bad input capture")

// ErrNoMAC is wrapped when a real server has no mac in the config: a replay
// has no neighbours to ask.
var ErrNoMAC = errors.New("replay: real server without mac")

// Options tune a replay.
type Options struct {
	// MAC is the director's MAC; nil means each frame's destination MAC.
	MAC net.HardwareAddr
	// Listing, when set, receives one line per input frame: number,
	// verdict, reason, flow and chosen real server.
	Listing io.Writer
}

// Summary counts what happened to the input frames.
type Summary struct {
	Frames, Forwarded, Passed, Dropped int
	// ChecksumsCompleted counts frames whose partial checksum was completed.
	ChecksumsCompleted int
	ByReason           map[forwarder.Reason]int
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d frames: %d forwarded, %d passed, %d dropped", s.Frames, s.Forwarded, s.Passed, s.Dropped)
	reasons := make([]forwarder.Reason, 0, len(s.ByReason))
	for r := range s.ByReason {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool { return reasons[i] < reasons[j] })
	for i, r := range reasons {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", r, s.ByReason[r])
		if i == len(reasons)-1 {
			b.WriteString(")")
		}
	}
	if s.ChecksumsCompleted > 0 {
		fmt.Fprintf(&b, "; %d partial checksums completed", s.ChecksumsCompleted)
	}
	return b.String()
}

// CheckMACs returns an error naming every real server without a mac.
func CheckMACs(cfg *config.Config) error {
	var missing []string
	for i, s := range cfg.Services {
		for j, r := range s.RealServers {
			if r.MAC == nil {
				missing = append(missing, fmt.Sprintf("services[%d].realservers[%d] (%s, line %d)", i, j, r.Address, r.Line))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s: a replay has no neighbours to resolve: give each real server a mac (YAML field mac, or drlb replay -rs-mac ADDR=MAC)", ErrNoMAC, strings.Join(missing, ", "))
	}
	return nil
}

// packetSource is what both pcap and pcapng readers offer.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

func open(in io.Reader) (packetSource, error) {
	br := bufio.NewReader(in)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: too short for a capture file header: %v", ErrInput, err)
	}
	var src packetSource
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		src, err = pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	} else {
		src, err = pcapgo.NewReader(br)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if src.LinkType() != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("%w: link type %v, want Ethernet (capture on the director's LAN interface, not 'any')", ErrInput, src.LinkType())
	}
	return src, nil
}

// Run replays every frame of in through a forwarder built from cfg and
// writes the forwarded frames to out as a pcap file.
func Run(cfg *config.Config, in io.Reader, out io.Writer, opts Options) (Summary, error) {
	sum := Summary{ByReason: map[forwarder.Reason]int{}}
	if err := CheckMACs(cfg); err != nil {
		return sum, err
	}
	fw, err := forwarder.New(cfg, forwarder.Options{MAC: opts.MAC})
	if err != nil {
		return sum, err
	}
	src, err := open(in)
	if err != nil {
		return sum, err
	}
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return sum, err
	}
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("%w: frame %d: %v", ErrInput, sum.Frames+1, err)
		}
		sum.Frames++
		frame := append([]byte(nil), data...)
		m := forwarder.Meta{Time: ci.Timestamp.UnixNano()}
		if forwarder.HasPartialChecksum(frame) {
			m.CsumPartial = true
		}
		var flow string
		if opts.Listing != nil {
			flow = pktfmt.Describe(frame)
		}
		res := fw.Process(frame, &m)
		sum.ByReason[res.Reason]++
		switch res.Verdict {
		case forwarder.Forward:
			sum.Forwarded++
			if m.CsumPartial {
				sum.ChecksumsCompleted++
			}
			ci.CaptureLength = len(frame)
			if ci.Length < len(frame) {
				ci.Length = len(frame)
			}
			if err := w.WritePacket(ci, frame); err != nil {
				return sum, err
			}
		case forwarder.Pass:
			sum.Passed++
		case forwarder.Drop:
			sum.Dropped++
		}
		if opts.Listing != nil {
			line := fmt.Sprintf("%d %s %s %s", sum.Frames, res.Verdict, res.Reason, flow)
			if res.Verdict == forwarder.Forward {
				rs := cfg.Services[res.Service].RealServers[res.Real]
				line += fmt.Sprintf(" => %s %s", rs.Address, rs.MAC)
				if m.CsumPartial {
					line += " (checksum completed)"
				}
			}
			if _, err := fmt.Fprintln(opts.Listing, line); err != nil {
				return sum, err
			}
		}
	}
	return sum, nil
}
