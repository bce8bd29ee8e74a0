package arp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Lab addresses (ARCHITECTURE.md#lab-addresses) and documentation IPv6 addresses.
var (
	dirMAC    = MAC{0x02, 0, 0, 0, 0, 0x02}
	routerMAC = MAC{0x02, 0, 0, 0, 0, 0x01}
	rs1MAC    = MAC{0x02, 0, 0, 0, 0, 0x11}
	rs2MAC    = MAC{0x02, 0, 0, 0, 0, 0x12}
	evilMAC   = MAC{0x02, 0, 0, 0, 0, 0x66}

	dirIP    = netip.MustParseAddr("198.18.0.2")
	routerIP = netip.MustParseAddr("198.18.0.1")
	vip4     = netip.MustParseAddr("198.18.0.100")
	rs1IP    = netip.MustParseAddr("198.18.0.11")
	otherIP  = netip.MustParseAddr("198.18.0.50")
	zero4    = netip.IPv4Unspecified()

	dirIP6    = netip.MustParseAddr("fe80::2")
	routerIP6 = netip.MustParseAddr("fe80::1")
	vip6      = netip.MustParseAddr("2001:db8::100")
	rs1IP6    = netip.MustParseAddr("2001:db8::11")
	other6    = netip.MustParseAddr("2001:db8::50")
	zero6     = netip.IPv6Unspecified()
)

func hw(m MAC) net.HardwareAddr { return m.HardwareAddr() }
func ip(a netip.Addr) net.IP    { return net.IP(a.AsSlice()) }

// gpVLAN is an optional tag for the gopacket builders: nil = untagged.
type gpVLAN *layers.Dot1Q

func tag(id uint16, prio uint8) gpVLAN {
	return &layers.Dot1Q{VLANIdentifier: id, Priority: prio}
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("gopacket serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ethLayers(dst, src MAC, v gpVLAN, et layers.EthernetType) []gopacket.SerializableLayer {
	eth := &layers.Ethernet{DstMAC: hw(dst), SrcMAC: hw(src), EthernetType: et}
	if v == nil {
		return []gopacket.SerializableLayer{eth}
	}
	eth.EthernetType = layers.EthernetTypeDot1Q
	q := *v
	q.Type = et
	return []gopacket.SerializableLayer{eth, &q}
}

// gpARP builds an ARP frame with gopacket, independently of our encoder.
func gpARP(t testing.TB, v gpVLAN, dst MAC, op uint16, sha MAC, spa netip.Addr, tha MAC, tpa netip.Addr) []byte {
	a := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
		SourceHwAddress: hw(sha), SourceProtAddress: ip(spa),
		DstHwAddress: hw(tha), DstProtAddress: ip(tpa),
	}
	return serialize(t, append(ethLayers(dst, sha, v, layers.EthernetTypeARP), a)...)
}

// gpNDP builds an NS or NA frame with gopacket. ll is the link-layer
// option (source for NS, target for NA); nil omits it.
type ndpSpec struct {
	v        gpVLAN
	dst, src MAC
	sip, dip netip.Addr
	hop      uint8
	typ      uint8
	flags    uint8
	target   netip.Addr
	ll       *MAC
}

func gpNDP(t testing.TB, s ndpSpec) []byte {
	if s.hop == 0 {
		s.hop = 255
	}
	ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: s.hop, SrcIP: ip(s.sip), DstIP: ip(s.dip)}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.typ, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
		t.Fatal(err)
	}
	var opts layers.ICMPv6Options
	var body gopacket.SerializableLayer
	if s.typ == TypeNeighborSolicitation {
		if s.ll != nil {
			opts = append(opts, layers.ICMPv6Option{Type: layers.ICMPv6OptSourceAddress, Data: hw(*s.ll)})
		}
		body = &layers.ICMPv6NeighborSolicitation{TargetAddress: ip(s.target), Options: opts}
	} else {
		if s.ll != nil {
			opts = append(opts, layers.ICMPv6Option{Type: layers.ICMPv6OptTargetAddress, Data: hw(*s.ll)})
		}
		body = &layers.ICMPv6NeighborAdvertisement{Flags: s.flags, TargetAddress: ip(s.target), Options: opts}
	}
	return serialize(t, append(ethLayers(s.dst, s.src, s.v, layers.EthernetTypeIPv6), ip6, icmp, body)...)
}

func macp(m MAC) *MAC { return &m }

// decoded is a frame as gopacket sees it, with its checksums verified.
type decoded struct {
	eth  *layers.Ethernet
	vlan *layers.Dot1Q
	arp  *layers.ARP
	ip6  *layers.IPv6
	ns   *layers.ICMPv6NeighborSolicitation
	na   *layers.ICMPv6NeighborAdvertisement
}

func gpDecode(t testing.TB, frame []byte) decoded {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode %x: %v", frame, el.Error())
	}
	var d decoded
	if icmp, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		// gopacket's decoder does not link ICMPv6 to its IPv6 header.
		if err := icmp.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
			t.Fatal(err)
		}
		err, res := icmp.VerifyChecksum()
		if err != nil || !res.Valid {
			t.Fatalf("ICMPv6 checksum: err %v, %+v", err, res)
		}
	}
	d.eth, _ = p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	d.vlan, _ = p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
	d.arp, _ = p.Layer(layers.LayerTypeARP).(*layers.ARP)
	d.ip6, _ = p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	d.ns, _ = p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
	d.na, _ = p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	return d
}

func llOption(opts layers.ICMPv6Options, typ layers.ICMPv6Opt) (MAC, bool) {
	for _, o := range opts {
		if o.Type == typ && len(o.Data) == 6 {
			return MAC(o.Data), true
		}
	}
	return MAC{}, false
}

// fixChecksum recomputes the ICMPv6 checksum of an untagged or tagged
// IPv6 frame after a test mutated it.
func fixChecksum(frame []byte) {
	_, off, _ := wire.EtherType(frame)
	src := netip.AddrFrom16([16]byte(frame[off+8 : off+24]))
	dst := netip.AddrFrom16([16]byte(frame[off+24 : off+40]))
	plen := int(frame[off+4])<<8 | int(frame[off+5])
	msg := frame[off+ipv6Len : off+ipv6Len+plen]
	msg[2], msg[3] = 0, 0
	c := ndpChecksum(src, dst, msg)
	msg[2], msg[3] = byte(c>>8), byte(c)
}

// withOuter returns a copy of frame with an outer tag inserted in front of
// its EtherType or 802.1Q tag, as a provider bridge makes a QinQ frame.
func withOuter(frame []byte, tpid, tci uint16) []byte {
	b := append([]byte(nil), frame[:12]...)
	b = binary.BigEndian.AppendUint16(b, tpid)
	b = binary.BigEndian.AppendUint16(b, tci)
	return append(b, frame[12:]...)
}

// gpTags lists a frame's VLAN tags as gopacket decodes them, outermost
// first, each with the TPID that announced it.
func gpTags(frame []byte) []wire.Tag {
	var tags []wire.Tag
	var tpid layers.EthernetType
	for _, l := range gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default).Layers() {
		switch l := l.(type) {
		case *layers.Ethernet:
			tpid = l.EthernetType
		case *layers.Dot1Q:
			tci := uint16(l.Priority)<<13 | l.VLANIdentifier
			if l.DropEligible {
				tci |= 1 << 12
			}
			tags = append(tags, wire.Tag{TPID: uint16(tpid), TCI: tci})
			tpid = l.Type
		}
	}
	return tags
}

// ethTags lists the tags of a parsed link header, outermost first.
func ethTags(e Ethernet) []wire.Tag {
	var tags []wire.Tag
	if e.Outer.TPID != 0 {
		tags = append(tags, e.Outer)
	}
	if e.VLAN.Tagged {
		tags = append(tags, wire.Tag{TPID: wire.EtherTypeVLAN, TCI: e.VLAN.TCI})
	}
	return tags
}

// sameTags checks that reply carries request's tags, all of them, in
// order, with priority and DEI bits, as gopacket reads both frames.
func sameTags(t testing.TB, request, reply []byte) {
	t.Helper()
	if got, want := gpTags(reply), gpTags(request); !slices.Equal(got, want) {
		t.Fatalf("reply tags %+v, request tags %+v", got, want)
	}
}

// fakeClock is a manual clock. After channels fire on Advance; added
// signals that someone waits, so a test can step a Run loop.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	added   chan struct{}
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: t0, added: make(chan struct{}, 1)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	c.mu.Unlock()
	select {
	case c.added <- struct{}{}:
	default:
	}
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// recorder is a Sender that keeps copies of the frames.
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
	err    error
}

func (r *recorder) Send(f []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, append([]byte(nil), f...))
	return r.err
}

func (r *recorder) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.frames
	r.frames = nil
	return f
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}
