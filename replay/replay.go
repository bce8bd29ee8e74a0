package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
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
			flow = describe(frame)
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

// describe summarises a frame for the listing: protocol and flow, TCP
// flags, VLAN, fragment; only for humans, so it may be slow.
func describe(frame []byte) string {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	var parts []string
	if q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); ok {
		parts = append(parts, fmt.Sprintf("vlan %d", q.VLANIdentifier))
	}
	if a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		s, _ := netip.AddrFromSlice(a.SourceProtAddress)
		d, _ := netip.AddrFromSlice(a.DstProtAddress)
		op := "reply"
		if a.Operation == layers.ARPRequest {
			op = "who-has"
		}
		return strings.Join(append(parts, fmt.Sprintf("arp %s %s tell %s", op, d, s)), " ")
	}
	if e := pkt.ErrorLayer(); e != nil {
		return strings.Join(append(parts, "malformed: "+e.Error().Error()), " ")
	}
	nl := pkt.NetworkLayer()
	if nl == nil {
		return strings.Join(append(parts, "non-ip"), " ")
	}
	src, dst := nl.NetworkFlow().Src().String(), nl.NetworkFlow().Dst().String()
	if ip4, ok := nl.(*layers.IPv4); ok && (ip4.Flags&layers.IPv4MoreFragments != 0 || ip4.FragOffset != 0) {
		return strings.Join(append(parts, fmt.Sprintf("ip %s -> %s frag id %d offset %d", src, dst, ip4.Id, int(ip4.FragOffset)*8)), " ")
	}
	switch l := pkt.TransportLayer().(type) {
	case *layers.TCP:
		return strings.Join(append(parts, fmt.Sprintf("tcp %s -> %s %s", hostPort(src, uint16(l.SrcPort)), hostPort(dst, uint16(l.DstPort)), tcpFlags(l))), " ")
	case *layers.UDP:
		return strings.Join(append(parts, fmt.Sprintf("udp %s -> %s", hostPort(src, uint16(l.SrcPort)), hostPort(dst, uint16(l.DstPort)))), " ")
	}
	if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		return strings.Join(append(parts, fmt.Sprintf("icmp %s -> %s %s", src, dst, ic.TypeCode)), " ")
	}
	if ic, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		return strings.Join(append(parts, fmt.Sprintf("icmp6 %s -> %s %s", src, dst, ic.TypeCode)), " ")
	}
	return strings.Join(append(parts, fmt.Sprintf("ip %s -> %s", src, dst)), " ")
}

func hostPort(host string, port uint16) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func tcpFlags(t *layers.TCP) string {
	var b []byte
	for _, f := range []struct {
		on bool
		c  byte
	}{{t.SYN, 'S'}, {t.FIN, 'F'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.ACK, '.'}} {
		if f.on {
			b = append(b, f.c)
		}
	}
	return "[" + string(b) + "]"
}
