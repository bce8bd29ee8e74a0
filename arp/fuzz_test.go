package arp

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/wire"
)

func sentinel(err error) bool {
	for _, s := range []error{ErrTruncated, ErrNotARP, ErrNotNDP, ErrUnsupported, ErrBadHopLimit, ErrBadChecksum, ErrInvalid} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// seedFrames is the shared seed corpus: every kind of frame the package
// meets, tagged and untagged, plus a few broken ones.
func seedFrames(t testing.TB) [][]byte {
	sn := solicitedNode(vip6)
	ns := ndpSpec{dst: multicastMAC(sn), src: routerMAC, sip: routerIP6, dip: sn, typ: TypeNeighborSolicitation, target: vip6, ll: macp(routerMAC)}
	dad := ns
	dad.sip, dad.ll = zero6, nil
	taggedNS := ns
	taggedNS.v = tag(10, 1)
	var gna [MaxFrameLen]byte
	n := Gratuitous(evilMAC, vip6, VLANID(3), gna[:])
	req := gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4)
	return [][]byte{
		req,
		req[:30],
		gpARP(t, tag(42, 5), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4),
		gpARP(t, nil, broadcast, OpRequest, rs1MAC, zero4, MAC{}, vip4),
		gpARP(t, nil, broadcast, OpRequest, evilMAC, vip4, MAC{}, vip4),
		arpAnswer(t, rs1MAC, rs1IP, dirIP, nil),
		arpAnswer(t, rs2MAC, rs1IP, dirIP, tag(42, 0)),
		gpNDP(t, ns),
		gpNDP(t, dad),
		gpNDP(t, taggedNS),
		ndpAnswer(t, rs1MAC, rs1IP6, dirIP6, nil),
		ndpAnswer(t, rs2MAC, rs1IP6, dirIP6, tag(42, 0)),
		withOuter(gpARP(t, tag(42, 5), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4), wire.EtherTypeQinQ, 100),
		withOuter(gpNDP(t, taggedNS), wire.EtherTypeVLAN, 100),
		withOuter(gpNDP(t, ns), wire.EtherTypeQinQ, 100),
		append([]byte(nil), gna[:n]...),
		{},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0, 1, 0x86},
	}
}

func FuzzParseARP(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseARP(data)
		if err != nil {
			if !sentinel(err) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		var buf [MaxFrameLen]byte
		n := p.Encode(buf[:])
		if n == 0 {
			t.Fatalf("parsed packet does not encode: %+v", p)
		}
		q, err := ParseARP(buf[:n])
		if err != nil || q != p {
			t.Fatalf("round trip: %+v -> %+v, %v", p, q, err)
		}
	})
}

func FuzzParseNDP(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseNDP(data)
		if errors.Is(err, ErrBadChecksum) {
			// Random bytes almost never carry a right checksum: fix it
			// so the fuzzer reaches the checks behind it.
			data = append([]byte(nil), data...)
			fixChecksum(data)
			p, err = ParseNDP(data)
			if errors.Is(err, ErrBadChecksum) {
				t.Fatalf("fixed checksum still bad: %x", data)
			}
		}
		if err != nil {
			if !sentinel(err) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		var buf [MaxFrameLen]byte
		n := p.Encode(buf[:])
		if n == 0 {
			t.Fatalf("parsed packet does not encode: %+v", p)
		}
		q, err := ParseNDP(buf[:n])
		if err != nil || q != p {
			t.Fatalf("round trip: %+v -> %+v, %v", p, q, err)
		}
	})
}

func FuzzResponderHandle(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	r := newTestResponder(f, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		var out [MaxFrameLen]byte
		n, ok := r.Handle(data, out[:])
		if !ok {
			if n != 0 {
				t.Fatalf("no reply but length %d", n)
			}
			return
		}
		var eth Ethernet
		parseEthernet(data, &eth)
		if a, err := ParseARP(out[:n]); err == nil {
			if a.Op != OpReply || a.SenderMAC != dirMAC || a.SenderIP != vip4 || a.Ethernet.Src != dirMAC ||
				!a.TargetMAC.IsUnicast() || a.Ethernet.VLAN != eth.VLAN || a.Ethernet.Outer != eth.Outer {
				t.Fatalf("bad ARP reply %+v to %x", a, data)
			}
			return
		}
		p, err := ParseNDP(out[:n])
		if err != nil {
			t.Fatalf("reply is neither ARP nor NDP: %v", err)
		}
		if p.Type != TypeNeighborAdvertisement || p.Target != vip6 || p.Src != vip6 || !p.HasTargetLL || p.TargetLL != dirMAC ||
			p.Ethernet.Src != dirMAC || p.Ethernet.VLAN != eth.VLAN || p.Ethernet.Outer != eth.Outer || p.Flags&FlagOverride == 0 {
			t.Fatalf("bad NDP reply %+v to %x", p, data)
		}
	})
}

func FuzzResolverHandle(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewResolver(ResolverConfig{MAC: dirMAC, IPv4: dirIP, IPv6: dirIP6, Sender: &recorder{}})
		if err != nil {
			t.Fatal(err)
		}
		wanted := []netip.Addr{rs1IP, rs1IP6}
		for _, a := range wanted {
			r.Want(a)
		}
		r.Tick(time.Now()) // requests outstanding
		accepted := r.Handle(data)
		changed := false
		for _, a := range wanted {
			if m, ok := r.Lookup(a); ok {
				changed = true
				if !m.IsUnicast() {
					t.Fatalf("learned non-unicast MAC %v for %v", m, a)
				}
			}
		}
		if changed != accepted {
			t.Fatalf("accepted %v but table changed %v", accepted, changed)
		}
		if !accepted {
			return
		}
		if a, err := ParseARP(data); err == nil {
			if a.Op != OpReply || a.TargetMAC != dirMAC || a.TargetIP != dirIP {
				t.Fatalf("accepted a frame that is not our answer: %+v", a)
			}
			return
		}
		if p, err := ParseNDP(data); err != nil || p.Type != TypeNeighborAdvertisement || p.Dst != dirIP6 {
			t.Fatalf("accepted a frame that is not our answer: %+v %v", p, err)
		}
	})
}
