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

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/step"
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
	// MAC is the director's MAC; nil means the MAC learnt from the
	// capture (DirectorMAC). As live, frames sent to another MAC are
	// passed (not-ours), its own frames are dropped (own-frame), and its
	// answers come from it.
	MAC net.HardwareAddr
	// MTU of the LAN: larger frames that may not be fragmented are
	// answered with ICMP fragmentation-needed / packet-too-big, as live.
	// 0 checks nothing. A capture taken on the director with GRO on holds
	// merged super-frames larger than the MTU, which live forwards (their
	// offload header says what they are) and a capture cannot tell: leave
	// it 0 to replay such a capture.
	MTU int
	// ForwardedOnly writes only the forwarded frames, not the director's
	// own answers.
	ForwardedOnly bool
	// Listing, when set, receives one line per input frame (numbered):
	// what the director did and why, the flow, the real server, what was
	// sent; the same lines `drlb run -trace` prints.
	Listing io.Writer
}

// Summary counts what happened to the input frames.
type Summary struct {
	// Frames = Forwarded + Answered + Passed + Dropped.
	Frames, Forwarded, Answered, Passed, Dropped int
	// Answers counts the director's own frames by kind.
	Answers map[step.Kind]int
	// ChecksumsCompleted counts frames whose partial checksum was completed.
	ChecksumsCompleted int
	// Cut counts frames the capture cut at its snap length (tcpdump -s
	// 96): replayed with zeros for their missing bytes.
	Cut      int
	ByReason map[forwarder.Reason]int
	// DirectorMAC is the MAC the replay answered ARP/NDP with: Options.MAC,
	// else learnt from the capture (nil when it holds no frame to a VIP).
	DirectorMAC net.HardwareAddr
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d frames: %d forwarded, %d answered, %d passed, %d dropped", s.Frames, s.Forwarded, s.Answered, s.Passed, s.Dropped)
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
	if s.Answered > 0 {
		b.WriteString("; answers:")
		for k := step.Kind(0); k < step.TooBig+1; k++ {
			if n := s.Answers[k]; n > 0 {
				fmt.Fprintf(&b, " %s %d", k, n)
			}
		}
	}
	if s.ChecksumsCompleted > 0 {
		fmt.Fprintf(&b, "; %d partial checksums completed", s.ChecksumsCompleted)
	}
	if s.Cut > 0 {
		fmt.Fprintf(&b, "; %d cut by the capture's snap length, replayed with zeros for their missing bytes", s.Cut)
	}
	return b.String()
}

// addrLine is a server's address and, if known, its line ("198.18.0.11,
// line 5"): a server of a keepalived.conf's include has none.
func addrLine(a netip.Addr, line int) string {
	if line <= 0 {
		return a.String()
	}
	return fmt.Sprintf("%s, line %d", a, line)
}

// CheckMACs returns an error naming every real server (and sorry server)
// without a mac.
func CheckMACs(cfg *config.Config) error {
	var missing []string
	for i, s := range cfg.Services {
		for j, r := range s.RealServers {
			if r.MAC == nil {
				missing = append(missing, fmt.Sprintf("services[%d].realservers[%d] (%s)", i, j, addrLine(r.Address, r.Line)))
			}
		}
		if ss := s.SorryServer; ss != nil && ss.MAC == nil {
			missing = append(missing, fmt.Sprintf("services[%d].sorry_server (%s)", i, addrLine(ss.Address, ss.Line)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s: a replay has no neighbours to resolve: give each real server a mac (YAML field mac, or drlb replay -rs-mac ADDR=MAC)", ErrNoMAC, strings.Join(missing, ", "))
	}
	return nil
}

// outSnapLen is the output file's snap length: libpcap's MAXIMUM_SNAPLEN.
const outSnapLen = 262144

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
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		// Each interface of a pcapng file has its own link type: the
		// frames are checked one by one (ngSource), not skipped
		// unsaid, as libpcap does with those unlike the first
		// interface's (the listing's frame numbers then no longer
		// matched Wireshark's).
		opts := pcapgo.DefaultNgReaderOptions
		opts.WantMixedLinkType = true
		ng, err := pcapgo.NewNgReader(br, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInput, err)
		}
		return ngSource{ng}, nil
	}
	src, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if src.LinkType() != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("%w: %v", ErrInput, notEthernet(src.LinkType()))
	}
	return src, nil
}

func notEthernet(lt layers.LinkType) error {
	return fmt.Errorf("link type %v, want Ethernet (capture on the director's LAN interface, not 'any')", lt)
}

// ngSource reads a pcapng file whose interfaces may differ in link type,
// and refuses a frame that is not Ethernet.
type ngSource struct{ r *pcapgo.NgReader }

func (s ngSource) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

func (s ngSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := s.r.ReadPacketData()
	if err != nil {
		return data, ci, err
	}
	var lt layers.LinkType // WantMixedLinkType puts it first; none is no Ethernet
	if len(ci.AncillaryData) > 0 {
		lt, _ = ci.AncillaryData[0].(layers.LinkType)
	}
	if lt != layers.LinkTypeEthernet {
		return nil, ci, fmt.Errorf("interface %d: %v", ci.InterfaceIndex, notEthernet(lt))
	}
	return data, ci, nil
}

// Run replays every frame of in through a director step built from cfg
// and writes what the director sends to out as a pcap file.
func Run(cfg *config.Config, in io.Reader, out io.Writer, opts Options) (Summary, error) {
	sum := Summary{ByReason: map[forwarder.Reason]int{}, Answers: map[step.Kind]int{}}
	if err := CheckMACs(cfg); err != nil {
		return sum, err
	}
	if opts.MTU < 0 {
		return sum, fmt.Errorf("replay: MTU %d is negative", opts.MTU)
	}
	sum.DirectorMAC = opts.MAC
	if sum.DirectorMAC == nil {
		// Only learning the MAC reads the capture twice: with it given, a
		// pipe is replayed as it is read, not first read whole into memory.
		rs, err := rewindable(in)
		if err != nil {
			return sum, err
		}
		if sum.DirectorMAC, err = learnDirectorMAC(cfg, rs); err != nil {
			return sum, err
		}
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return sum, err
		}
		in = rs
	}
	c := &counter{sum: &sum}
	st, err := newStep(cfg, opts, c)
	if err != nil {
		return sum, err
	}
	src, err := open(in)
	if err != nil {
		return sum, err
	}
	w := pcapgo.NewWriter(out)
	// libpcap's largest snap length, as tcpdump writes: with 65535 tcpdump
	// and Wireshark cut the tail off a forwarded GRO super-frame (an IP
	// packet of 65535 bytes is a 65549-byte frame).
	if err := w.WriteFileHeader(outSnapLen, layers.LinkTypeEthernet); err != nil {
		return sum, err
	}
	frames := make([]link.Frame, 1)
	var sent []link.Frame
	var sweep idleSweep
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("%w: frame %d: %v", ErrInput, sum.Frames+1, err)
		}
		cut := ci.CaptureLength < ci.Length
		// Cut or whole (a pcap header may declare a larger snap length,
		// pcapng has none), no frame is longer: the output could not
		// hold it.
		if n := max(ci.Length, len(data)); n > outSnapLen {
			return sum, fmt.Errorf("%w: frame %d: a length of %d bytes, over the largest frame (%d)", ErrInput, sum.Frames+1, n, outSnapLen)
		}
		sum.Frames++
		f := &frames[0]
		f.Data = append(f.Data[:0], data...)
		if cut {
			// Cut at the capture's snap length (tcpdump -s 96): as it is,
			// the frame would be dropped as malformed where live
			// forwarded it. The decision needs the headers only, so the
			// missing bytes are zeros, and the output is cut where the
			// input was.
			f.Data = append(f.Data, make([]byte, ci.Length-len(f.Data))...)
			sum.Cut++
		}
		// A capture keeps a partial checksum as the sender left it; the
		// output has no offload header to carry it, so complete it.
		f.Offload = link.Offload{CsumPartial: forwarder.HasPartialChecksum(f.Data)}
		now := ci.Timestamp.UnixNano()
		sweep.upTo(st.Forwarder(), now)
		sent = st.Handle(now, frames, sent[:0])
		for _, o := range sent {
			if opts.ForwardedOnly && c.last != step.Forward {
				continue // with a batch of one frame, only it can be forwarded
			}
			oci := ci
			oci.CaptureLength, oci.Length = len(o.Data), len(o.Data)
			if cut {
				oci.CaptureLength = min(oci.CaptureLength, ci.CaptureLength)
			}
			if err := w.WritePacket(oci, o.Data[:oci.CaptureLength]); err != nil {
				return sum, err
			}
		}
		if c.err != nil {
			return sum, c.err
		}
	}
	return sum, nil
}

// idleSweep runs the live director's idle sweep (forwarder.IdleSweep,
// every IdlePass/IdleTicks on its own timer) on the capture's clock:
// live, it walks the whole table every IdlePass however few frames come,
// and the table pressure (stateless SYNs, the short SYN_RECV timeout)
// counts the expired entries it has not swept yet.
type idleSweep struct{ next int64 }

const idleTick = int64(forwarder.IdlePass / forwarder.IdleTicks)

// upTo runs the ticks due by now, before the frame of now is handled.
// After a gap longer than two passes only the last two passes' ticks
// run: they sweep the whole table twice, all that the others would have
// done. A clock set back (a capture's timestamps going backwards) starts
// the ticks again from now.
func (s *idleSweep) upTo(fw *forwarder.Forwarder, now int64) {
	if s.next == 0 || now < s.next-idleTick {
		s.next = now + idleTick
		return
	}
	const keep = 2 * forwarder.IdleTicks
	if late := (now - s.next) / idleTick; late > keep {
		s.next += (late - keep) * idleTick
	}
	for ; s.next <= now; s.next += idleTick {
		fw.IdleSweep(s.next)
	}
}

// newStep builds the director's step for a replay: the forwarder, a
// responder for the VIPs answering with the director's MAC, no resolver
// (real servers' MACs come from the config), and an observer that counts
// and, with a listing, narrates.
func newStep(cfg *config.Config, opts Options, c *counter) (*step.Step, error) {
	sum := c.sum
	fw, err := forwarder.New(cfg, forwarder.Options{MAC: sum.DirectorMAC, OwnMAC: sum.DirectorMAC, MTU: opts.MTU})
	if err != nil {
		return nil, err
	}
	sc := step.Config{Forwarder: fw, CompleteChecksums: true, Batch: 1, Observer: c}
	// A director announcing its VIPs by BGP answers no ARP/NDP for them
	// (the router routes them), and neither does its replay.
	if sum.DirectorMAC != nil && cfg.BGP == nil {
		mac, _ := arp.MACFrom(sum.DirectorMAC)
		vlan := arp.NoVLAN // as the director: on a trunk, only its VLAN is answered
		if cfg.VLAN != 0 {
			vlan = arp.VLANID(uint16(cfg.VLAN))
		}
		if sc.Responder, err = arp.NewResponder(arp.ResponderConfig{MAC: mac, VIPs: cfg.VIPs(), VLAN: vlan}); err != nil {
			return nil, err
		}
	}
	if opts.Listing != nil {
		c.narrator = step.NewNarrator(opts.Listing, cfg, step.NarratorOptions{Numbered: true})
	}
	return step.New(sc)
}

// counter is the replay's Observer: it keeps the Summary and passes
// events on to the listing.
type counter struct {
	sum      *Summary
	narrator *step.Narrator
	last     step.Action // of the frame just handled
	err      error       // writing the listing
}

func (c *counter) Wants(now int64) bool {
	if c.narrator != nil {
		return c.narrator.Wants(now)
	}
	return true
}

func (c *counter) Observe(e *step.Event) {
	s := c.sum
	c.last = e.Action
	s.ByReason[e.Result.Reason]++
	switch e.Action {
	case step.Forward:
		s.Forwarded++
		if e.CsumCompleted {
			s.ChecksumsCompleted++
		}
	case step.Answer:
		s.Answered++
		s.Answers[e.Kind]++
	case step.Pass:
		s.Passed++
	case step.Drop:
		s.Dropped++
	}
	if c.narrator != nil {
		c.narrator.Observe(e)
		if c.err == nil {
			c.err = c.narrator.Err()
		}
	}
}
