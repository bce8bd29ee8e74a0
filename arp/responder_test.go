package arp

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket/layers"
)

func newTestResponder(t testing.TB, conflicts *[]Conflict) *Responder {
	t.Helper()
	cfg := ResponderConfig{MAC: dirMAC, VIPs: []netip.Addr{vip4, vip6}}
	if conflicts != nil {
		cfg.OnConflict = func(c Conflict) { *conflicts = append(*conflicts, c) }
	}
	r, err := NewResponder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResponderARP(t *testing.T) {
	type want struct {
		reply    bool
		dst      MAC        // reply's Ethernet destination and ARP target MAC
		tip      netip.Addr // reply's target IP
		conflict bool
		stats    ResponderStats
	}
	tests := []struct {
		name  string
		frame []byte
		want  want
	}{
		{"router asks who-has VIP",
			gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4),
			want{reply: true, dst: routerMAC, tip: routerIP, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"tagged request",
			gpARP(t, tag(42, 3), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4),
			want{reply: true, dst: routerMAC, tip: routerIP, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"QinQ request (802.1ad outer tag, 802.1Q inner tag)",
			withOuter(gpARP(t, tag(42, 3), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4), wire.EtherTypeQinQ, 0x3064),
			want{reply: true, dst: routerMAC, tip: routerIP, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"802.1Q in 802.1Q request",
			withOuter(gpARP(t, tag(42, 0), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4), wire.EtherTypeVLAN, 100),
			want{reply: true, dst: routerMAC, tip: routerIP, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"802.1ad tag alone",
			withOuter(gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4), wire.EtherTypeQinQ, 7),
			want{reply: true, dst: routerMAC, tip: routerIP, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"three tags are not answered",
			withOuter(withOuter(gpARP(t, tag(42, 0), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4), wire.EtherTypeVLAN, 100), wire.EtherTypeQinQ, 200),
			want{}},
		{"unicast refresh to our MAC",
			gpARP(t, nil, dirMAC, OpRequest, routerMAC, routerIP, dirMAC, vip4),
			want{reply: true, dst: routerMAC, tip: routerIP, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"RFC 5227 probe for VIP is answered",
			gpARP(t, nil, broadcast, OpRequest, rs1MAC, zero4, MAC{}, vip4),
			want{reply: true, dst: rs1MAC, tip: zero4, stats: ResponderStats{Requests: 1, Probes: 1, Replies: 1}}},
		{"who-has another address",
			gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, rs1IP),
			want{}},
		{"unicast request to another station",
			gpARP(t, nil, rs1MAC, OpRequest, routerMAC, routerIP, MAC{}, vip4),
			want{}},
		{"request from a multicast sender MAC",
			gpARP(t, nil, broadcast, OpRequest, MAC{0x01, 0, 0x5e, 0, 0, 1}, routerIP, MAC{}, vip4),
			want{stats: ResponderStats{Requests: 1}}},
		{"our own request read back",
			gpARP(t, nil, broadcast, OpRequest, dirMAC, dirIP, MAC{}, vip4),
			want{}},
		{"our own gratuitous ARP read back",
			gpARP(t, nil, broadcast, OpRequest, dirMAC, vip4, MAC{}, vip4),
			want{}},
		{"reply about VIP from us is not answered",
			gpARP(t, nil, routerMAC, OpReply, routerMAC, routerIP, dirMAC, vip4),
			want{}},
		{"gratuitous request for VIP from another station",
			gpARP(t, nil, broadcast, OpRequest, evilMAC, vip4, MAC{}, vip4),
			want{conflict: true, stats: ResponderStats{Conflicts: 1}}},
		{"QinQ gratuitous request for VIP from another station",
			withOuter(gpARP(t, tag(42, 0), broadcast, OpRequest, evilMAC, vip4, MAC{}, vip4), wire.EtherTypeQinQ, 5),
			want{conflict: true, stats: ResponderStats{Conflicts: 1}}},
		{"gratuitous reply for VIP from another station",
			gpARP(t, nil, broadcast, OpReply, evilMAC, vip4, broadcast, vip4),
			want{conflict: true, stats: ResponderStats{Conflicts: 1}}},
		{"another station uses our VIP as source asking for others",
			gpARP(t, nil, broadcast, OpRequest, evilMAC, vip4, MAC{}, routerIP),
			want{conflict: true, stats: ResponderStats{Conflicts: 1}}},
		{"truncated ARP",
			gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4)[:30],
			want{stats: ResponderStats{Malformed: 1}}},
		{"IPv4 frame", func() []byte {
			b := gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4)
			b[12], b[13] = 8, 0
			return b
		}(), want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conflicts []Conflict
			r := newTestResponder(t, &conflicts)
			var out [MaxFrameLen]byte
			n, ok := r.Handle(tt.frame, out[:])
			if ok != tt.want.reply {
				t.Fatalf("reply = %v, want %v", ok, tt.want.reply)
			}
			if st := r.Stats(); st != tt.want.stats {
				t.Fatalf("stats %+v, want %+v", st, tt.want.stats)
			}
			if tt.want.conflict != (len(conflicts) == 1) {
				t.Fatalf("conflicts %+v", conflicts)
			}
			if tt.want.conflict && (conflicts[0].VIP != vip4 || conflicts[0].MAC != evilMAC) {
				t.Fatalf("conflict %+v", conflicts[0])
			}
			if c := conflicts; len(c) == 1 && !slices.Equal(ethTags(Ethernet{VLAN: c[0].VLAN, Outer: c[0].Outer}), gpTags(tt.frame)) {
				t.Fatalf("conflict tags %+v, frame's %+v", c[0], gpTags(tt.frame))
			}
			if !ok {
				return
			}
			req, _ := ParseARP(tt.frame)
			d := gpDecode(t, out[:n])
			if MAC(d.eth.DstMAC) != tt.want.dst || MAC(d.eth.SrcMAC) != dirMAC {
				t.Errorf("ethernet %v -> %v", d.eth.SrcMAC, d.eth.DstMAC)
			}
			if d.arp.Operation != layers.ARPReply || MAC(d.arp.SourceHwAddress) != dirMAC ||
				[4]byte(d.arp.SourceProtAddress) != vip4.As4() || MAC(d.arp.DstHwAddress) != tt.want.dst ||
				[4]byte(d.arp.DstProtAddress) != tt.want.tip.As4() {
				t.Errorf("reply %+v", d.arp)
			}
			// Every tag of the request, priority bits included, and
			// as the parser saw them.
			sameTags(t, tt.frame, out[:n])
			if got, want := gpTags(out[:n]), ethTags(req.Ethernet); !slices.Equal(got, want) {
				t.Fatalf("reply tags %+v, parsed request %+v", got, req.Ethernet)
			}
		})
	}
}

func TestResponderNDP(t *testing.T) {
	sn := solicitedNode(vip6)
	ns := ndpSpec{dst: multicastMAC(sn), src: routerMAC, sip: routerIP6, dip: sn, typ: TypeNeighborSolicitation, target: vip6, ll: macp(routerMAC)}
	with := func(s ndpSpec, fn func(*ndpSpec)) ndpSpec { fn(&s); return s }
	type want struct {
		reply    bool
		ethDst   MAC
		ipDst    netip.Addr
		flags    uint8
		conflict bool
		stats    ResponderStats
	}
	tests := []struct {
		name  string
		frame []byte
		want  want
	}{
		{"router solicits VIP", gpNDP(t, ns),
			want{reply: true, ethDst: routerMAC, ipDst: routerIP6, flags: FlagSolicited | FlagOverride, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"tagged solicitation", gpNDP(t, with(ns, func(s *ndpSpec) { s.v = tag(100, 6) })),
			want{reply: true, ethDst: routerMAC, ipDst: routerIP6, flags: FlagSolicited | FlagOverride, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"QinQ solicitation", withOuter(gpNDP(t, with(ns, func(s *ndpSpec) { s.v = tag(100, 6) })), wire.EtherTypeQinQ, 0x1fff),
			want{reply: true, ethDst: routerMAC, ipDst: routerIP6, flags: FlagSolicited | FlagOverride, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"802.1Q in 802.1Q DAD", withOuter(gpNDP(t, with(ns, func(s *ndpSpec) { s.v, s.sip, s.ll = tag(100, 0), zero6, nil })), wire.EtherTypeVLAN, 9),
			want{reply: true, ethDst: multicastMAC(allNodes), ipDst: allNodes, flags: FlagOverride, stats: ResponderStats{Requests: 1, Probes: 1, Replies: 1}}},
		{"802.1ad-tagged solicitation", withOuter(gpNDP(t, ns), wire.EtherTypeQinQ, 33),
			want{reply: true, ethDst: routerMAC, ipDst: routerIP6, flags: FlagSolicited | FlagOverride, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"unicast solicitation (NUD) without option", gpNDP(t, with(ns, func(s *ndpSpec) { s.dst, s.dip, s.ll = dirMAC, vip6, nil })),
			want{reply: true, ethDst: routerMAC, ipDst: routerIP6, flags: FlagSolicited | FlagOverride, stats: ResponderStats{Requests: 1, Replies: 1}}},
		{"DAD for VIP is answered to all-nodes", gpNDP(t, with(ns, func(s *ndpSpec) { s.sip, s.ll = zero6, nil })),
			want{reply: true, ethDst: multicastMAC(allNodes), ipDst: allNodes, flags: FlagOverride, stats: ResponderStats{Requests: 1, Probes: 1, Replies: 1}}},
		{"solicitation for another address", gpNDP(t, with(ns, func(s *ndpSpec) {
			s.target, s.dip, s.dst = other6, solicitedNode(other6), multicastMAC(solicitedNode(other6))
		})),
			want{}},
		{"solicitation to another group", gpNDP(t, with(ns, func(s *ndpSpec) { s.dip, s.dst = solicitedNode(other6), multicastMAC(solicitedNode(other6)) })),
			want{}},
		{"unicast solicitation to another station", gpNDP(t, with(ns, func(s *ndpSpec) { s.dst, s.dip = rs1MAC, vip6 })),
			want{}},
		{"our own solicitation", gpNDP(t, with(ns, func(s *ndpSpec) { s.src, s.ll = dirMAC, macp(dirMAC) })),
			want{}},
		{"hop limit 64", gpNDP(t, with(ns, func(s *ndpSpec) { s.hop = 64 })),
			want{stats: ResponderStats{Malformed: 1}}},
		{"solicitation from our VIP by another station", gpNDP(t, with(ns, func(s *ndpSpec) {
			s.src, s.ll, s.sip, s.target, s.dip, s.dst = evilMAC, macp(evilMAC), vip6, other6, solicitedNode(other6), multicastMAC(solicitedNode(other6))
		})),
			want{conflict: true, stats: ResponderStats{Conflicts: 1}}},
		{"unsolicited advertisement for VIP from another station", gpNDP(t, ndpSpec{dst: multicastMAC(allNodes), src: evilMAC, sip: vip6, dip: allNodes,
			typ: TypeNeighborAdvertisement, flags: FlagOverride, target: vip6, ll: macp(evilMAC)}),
			want{conflict: true, stats: ResponderStats{Conflicts: 1}}},
		{"advertisement for another address", gpNDP(t, ndpSpec{dst: dirMAC, src: rs1MAC, sip: rs1IP6, dip: dirIP6,
			typ: TypeNeighborAdvertisement, flags: FlagSolicited, target: rs1IP6, ll: macp(rs1MAC)}),
			want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conflicts []Conflict
			r := newTestResponder(t, &conflicts)
			var out [MaxFrameLen]byte
			n, ok := r.Handle(tt.frame, out[:])
			if ok != tt.want.reply {
				t.Fatalf("reply = %v, want %v", ok, tt.want.reply)
			}
			if st := r.Stats(); st != tt.want.stats {
				t.Fatalf("stats %+v, want %+v", st, tt.want.stats)
			}
			if tt.want.conflict != (len(conflicts) == 1) {
				t.Fatalf("conflicts %+v", conflicts)
			}
			if tt.want.conflict && (conflicts[0].VIP != vip6 || conflicts[0].MAC != evilMAC) {
				t.Fatalf("conflict %+v", conflicts[0])
			}
			if c := conflicts; len(c) == 1 && !slices.Equal(ethTags(Ethernet{VLAN: c[0].VLAN, Outer: c[0].Outer}), gpTags(tt.frame)) {
				t.Fatalf("conflict tags %+v, frame's %+v", c[0], gpTags(tt.frame))
			}
			if !ok {
				return
			}
			req, _ := ParseNDP(tt.frame)
			d := gpDecode(t, out[:n])
			if MAC(d.eth.DstMAC) != tt.want.ethDst || MAC(d.eth.SrcMAC) != dirMAC {
				t.Errorf("ethernet %v -> %v", d.eth.SrcMAC, d.eth.DstMAC)
			}
			if d.ip6.HopLimit != 255 || !d.ip6.SrcIP.Equal(ip(vip6)) || !d.ip6.DstIP.Equal(ip(tt.want.ipDst)) {
				t.Errorf("ipv6 %v -> %v hop %d", d.ip6.SrcIP, d.ip6.DstIP, d.ip6.HopLimit)
			}
			if d.na == nil || d.na.Flags != tt.want.flags || !d.na.TargetAddress.Equal(ip(vip6)) {
				t.Fatalf("advertisement %+v", d.na)
			}
			if ll, ok := llOption(d.na.Options, layers.ICMPv6OptTargetAddress); !ok || ll != dirMAC {
				t.Errorf("target link-layer option %v %v", ll, ok)
			}
			sameTags(t, tt.frame, out[:n])
			if got, want := gpTags(out[:n]), ethTags(req.Ethernet); !slices.Equal(got, want) {
				t.Fatalf("reply tags %+v, parsed request %+v", got, req.Ethernet)
			}
			// The reply must be acceptable to ourselves as a parser.
			if _, err := ParseNDP(out[:n]); err != nil {
				t.Errorf("reply does not parse: %v", err)
			}
		})
	}
}

// TestResponderVLAN: a director on a trunk (VLAN set) answers and sees
// conflicts only on its VLAN. A request on another VLAN, or untagged (the
// native VLAN), is another network's: answering it would draw that
// network's traffic for the address to the director.
func TestResponderVLAN(t *testing.T) {
	sn := solicitedNode(vip6)
	ns := func(v gpVLAN) []byte {
		return gpNDP(t, ndpSpec{v: v, dst: multicastMAC(sn), src: routerMAC, sip: routerIP6, dip: sn,
			typ: TypeNeighborSolicitation, target: vip6, ll: macp(routerMAC)})
	}
	who := func(v gpVLAN) []byte { return gpARP(t, v, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4) }
	garp := func(v gpVLAN) []byte { return gpARP(t, v, broadcast, OpRequest, evilMAC, vip4, MAC{}, vip4) }
	tests := []struct {
		name     string
		vlan     VLAN
		frame    []byte
		reply    bool
		conflict bool
	}{
		{"who-has on our VLAN", VLANID(10), who(tag(10, 5)), true, false},
		{"who-has on our VLAN, QinQ inner tag", VLANID(10), withOuter(who(tag(10, 0)), wire.EtherTypeQinQ, 7), true, false},
		{"who-has on another VLAN", VLANID(10), who(tag(20, 0)), false, false},
		{"who-has untagged (native VLAN)", VLANID(10), who(nil), false, false},
		{"who-has with our VLAN as the outer tag only", VLANID(10), withOuter(who(tag(20, 0)), wire.EtherTypeQinQ, 10), false, false},
		{"solicitation on our VLAN", VLANID(10), ns(tag(10, 0)), true, false},
		{"solicitation on another VLAN", VLANID(10), ns(tag(20, 0)), false, false},
		{"gratuitous ARP on our VLAN", VLANID(10), garp(tag(10, 0)), false, true},
		{"gratuitous ARP on another VLAN", VLANID(10), garp(tag(20, 0)), false, false},
		{"no VLAN configured: any tag answered", NoVLAN, who(tag(20, 0)), true, false},
		{"no VLAN configured: untagged answered", NoVLAN, who(nil), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conflicts int
			r, err := NewResponder(ResponderConfig{MAC: dirMAC, VIPs: []netip.Addr{vip4, vip6}, VLAN: tt.vlan,
				OnConflict: func(Conflict) { conflicts++ }})
			if err != nil {
				t.Fatal(err)
			}
			var out [MaxFrameLen]byte
			n, ok := r.Handle(tt.frame, out[:])
			if ok != tt.reply {
				t.Fatalf("reply = %v, want %v", ok, tt.reply)
			}
			if (conflicts == 1) != tt.conflict {
				t.Fatalf("%d conflicts, want %v", conflicts, tt.conflict)
			}
			if ok {
				sameTags(t, tt.frame, out[:n])
			}
		})
	}
}

func TestResponderShortOut(t *testing.T) {
	r := newTestResponder(t, nil)
	var out [MinFrameLen - 1]byte
	if _, ok := r.Handle(gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4), out[:]); ok {
		t.Fatal("reply written into a short buffer")
	}
	if st := r.Stats(); st.Replies != 0 || st.Requests != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestResponderSetVIPs(t *testing.T) {
	r := newTestResponder(t, nil)
	req := gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, otherIP)
	var out [MaxFrameLen]byte
	if _, ok := r.Handle(req, out[:]); ok {
		t.Fatal("answered for an address that is not a VIP")
	}
	// An IPv4-mapped IPv6 VIP is the IPv4 VIP.
	if err := r.SetVIPs([]netip.Addr{netip.AddrFrom16(otherIP.As16())}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Handle(req, out[:]); !ok {
		t.Fatal("new VIP not answered")
	}
	bad := []struct {
		name string
		vip  netip.Addr
	}{
		{"zero", netip.Addr{}},
		{"unspecified", zero4},
		{"multicast", netip.MustParseAddr("224.0.0.1")},
		{"broadcast", netip.MustParseAddr("255.255.255.255")},
		{"IPv6 multicast", allNodes},
	}
	for _, b := range bad {
		if err := r.SetVIPs([]netip.Addr{vip4, b.vip}); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err %v", b.name, err)
		}
	}
	if _, ok := r.Handle(req, out[:]); !ok {
		t.Fatal("a failed SetVIPs changed the set")
	}
	if _, err := NewResponder(ResponderConfig{MAC: broadcast}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("broadcast MAC accepted: %v", err)
	}
}

func TestResponderAllocs(t *testing.T) {
	var n int
	r, err := NewResponder(ResponderConfig{MAC: dirMAC, VIPs: []netip.Addr{vip4, vip6}, OnConflict: func(Conflict) { n++ }})
	if err != nil {
		t.Fatal(err)
	}
	sn := solicitedNode(vip6)
	frames := map[string][]byte{
		"arp request":      gpARP(t, tag(5, 0), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4),
		"qinq arp request": withOuter(gpARP(t, tag(5, 0), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4), wire.EtherTypeQinQ, 6),
		"solicitation": gpNDP(t, ndpSpec{dst: multicastMAC(sn), src: routerMAC, sip: routerIP6, dip: sn,
			typ: TypeNeighborSolicitation, target: vip6, ll: macp(routerMAC)}),
		"conflict":  gpARP(t, nil, broadcast, OpRequest, evilMAC, vip4, MAC{}, vip4),
		"malformed": gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4)[:20],
	}
	var out [MaxFrameLen]byte
	for name, f := range frames {
		if a := testing.AllocsPerRun(100, func() { r.Handle(f, out[:]) }); a != 0 {
			t.Errorf("%s: %v allocations per Handle", name, a)
		}
	}
}

func BenchmarkResponderHandle(b *testing.B) {
	r := newTestResponder(b, nil)
	sn := solicitedNode(vip6)
	cases := []struct {
		name  string
		frame []byte
	}{
		{"ARPRequest", gpARP(b, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4)},
		{"ARPNotOurs", gpARP(b, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, rs1IP)},
		{"Solicitation", gpNDP(b, ndpSpec{dst: multicastMAC(sn), src: routerMAC, sip: routerIP6, dip: sn,
			typ: TypeNeighborSolicitation, target: vip6, ll: macp(routerMAC)})},
	}
	var out [MaxFrameLen]byte
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.frame)))
			for b.Loop() {
				r.Handle(c.frame, out[:])
			}
		})
	}
}
