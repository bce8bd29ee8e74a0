package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/internal/wire"
)

var (
	self6 = netip.MustParseAddr("fe80::2")
	peer6 = netip.MustParseAddr("fe80::3")
	vip6  = netip.MustParseAddr("2001:2::100")
)

// keepalivedAdvert6 is the first IPv6 advert keepalived 2.2.7 sent in a
// namespace (vrrp_version 3, virtual_router_id 51, priority 200,
// advert_int 0.1, virtual_ipaddress 2001:2::100, interface address
// fe80::3): the IPv6 packet of testdata/keepalived-advert6.pcap. Its flow
// label (0x35c56) is the kernel's (auto_flowlabels), not keepalived's.
func keepalivedAdvert6(t *testing.T) []byte {
	t.Helper()
	p := testutil.ReadPcap(t, filepath.Join("testdata", "keepalived-advert6.pcap"))
	if len(p) != 1 || len(p[0].Data) < 14 {
		t.Fatalf("want one Ethernet frame, got %d", len(p))
	}
	return p[0].Data[14:]
}

func TestParseKeepalivedAdvert6(t *testing.T) {
	p, err := ParseIPv6(keepalivedAdvert6(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Src != peer6 || p.TTL != 255 || p.VRID != 51 || p.Priority != 200 || p.Interval != 100*time.Millisecond ||
		len(p.Addrs) != 1 || p.Addrs[0] != vip6 {
		t.Fatalf("parsed %+v", p)
	}
}

// TestAppendIPv6IsKeepalived: the same advert built by drlb is byte for
// byte what keepalived sent (traffic class 0xc0, next header 112, hop
// limit 255, fe80::3 to ff02::12, checksum over the IPv6 pseudo-header),
// but for the flow label, which the kernel sets on both.
func TestAppendIPv6IsKeepalived(t *testing.T) {
	want := bytes.Clone(keepalivedAdvert6(t))
	a := Advert{VRID: 51, Priority: 200, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip6}}
	got, err := a.AppendIPv6(nil, peer6)
	if err != nil {
		t.Fatal(err)
	}
	want[1] &= 0xf0
	want[2], want[3] = 0, 0
	if !bytes.Equal(got, want) {
		t.Fatalf("built\n% x\nkeepalived sent (flow label zeroed)\n% x", got, want)
	}
	// The golden checksum, 0xe79c, is the IPv6 pseudo-header's: the same
	// message from another address or to the IPv4 group does not sum to it.
	msg := got[ipv6Len:]
	if binary.BigEndian.Uint16(msg[6:]) != 0xe79c {
		t.Fatalf("checksum %#04x", binary.BigEndian.Uint16(msg[6:]))
	}
	if wire.Fold(wire.Sum(msg, wire.PseudoHeaderSum(peer6, Group6, IPProtocol, len(msg)))) != 0 {
		t.Fatal("the checksum does not cover the IPv6 pseudo-header")
	}
	if _, err := Parse(msg, self6, Group6); !errors.Is(err, ErrChecksum) {
		t.Fatalf("from another source: %v, want a bad checksum", err)
	}
}

func TestParseIPv6Refuses(t *testing.T) {
	good := func() []byte {
		a := Advert{VRID: 7, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip6}}
		b, err := a.AppendIPv6(nil, peer6)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		change func(b []byte) []byte
		want   error
		reason string
	}{
		{"hop limit 254 (routed)", func(b []byte) []byte { b[7] = 254; return b }, ErrTTL, "ttl"},
		{"hop limit unknown (no IPV6_HOPLIMIT)", func(b []byte) []byte { b[7] = 0; return b }, ErrTTL, "ttl"},
		{"version 2", func(b []byte) []byte { b[40] = 0x21; return b }, ErrVersion, "version"},
		{"not an advert", func(b []byte) []byte { b[40] = 0x32; return b }, ErrType, "malformed"},
		{"bad checksum", func(b []byte) []byte { b[46]++; return b }, ErrChecksum, "checksum"},
		{"other source", func(b []byte) []byte { b[23]++; return b }, ErrChecksum, "checksum"},
		{"count too high", func(b []byte) []byte { b[43] = 2; return b }, ErrLength, "malformed"},
		{"IPv4-sized address", func(b []byte) []byte { b[5] -= 12; return b[:len(b)-12] }, ErrLength, "malformed"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrNotIPv6, "malformed"},
		{"not IPv6", func(b []byte) []byte { b[0] = 0x45; return b }, ErrNotIPv6, "malformed"},
		{"extension header", func(b []byte) []byte { b[6] = 0; return b }, ErrProtocol, "malformed"},
		{"short", func(b []byte) []byte { return b[:39] }, ErrShort, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIPv6(tc.change(good()), nil)
			if !errors.Is(err, tc.want) || Reason(err) != tc.reason {
				t.Fatalf("err %v (reason %s), want %v (%s)", err, Reason(err), tc.want, tc.reason)
			}
		})
	}
	// An IPv4 advert is no IPv6 one, and the other way round.
	b4, _ := (&Advert{VRID: 7, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip}}).AppendIPv4(nil, peer, 1)
	if _, err := ParseIPv6(b4, nil); err == nil {
		t.Error("ParseIPv6 took an IPv4 advert")
	}
	if _, err := ParseIPv4(good(), nil); err == nil {
		t.Error("ParseIPv4 took an IPv6 advert")
	}
}

func TestAppendIPv6Refuses(t *testing.T) {
	for _, tc := range []struct {
		src netip.Addr
		a   Advert
	}{
		{self6, Advert{VRID: 1, Priority: 1, Interval: time.Second, Addrs: []netip.Addr{vip}}},           // IPv4 VIP
		{self, Advert{VRID: 1, Priority: 1, Interval: time.Second, Addrs: []netip.Addr{vip6}}},           // IPv4 source
		{self6, Advert{VRID: 1, Priority: 1, Interval: 5 * time.Millisecond, Addrs: []netip.Addr{vip6}}}, // interval
	} {
		if _, err := tc.a.AppendIPv6(nil, tc.src); err == nil {
			t.Errorf("%v %+v: no error", tc.src, tc.a)
		}
	}
	a := Advert{VRID: 1, Priority: 1, Interval: time.Second, Addrs: []netip.Addr{vip6}}
	if _, err := a.AppendIPv4(nil, self6, 1); err == nil {
		t.Error("AppendIPv4 from an IPv6 source: no error")
	}
}

// FuzzParseIPv6: no input panics; what parses is built again to the same
// VRRP message.
func FuzzParseIPv6(f *testing.F) {
	a := Advert{VRID: 51, Priority: 200, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip6, self6}}
	b, _ := a.AppendIPv6(nil, peer6)
	f.Add(b)
	f.Add(b[:40])
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, 112, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseIPv6(b, nil)
		if err != nil {
			return
		}
		msg := b[ipv6Len : ipv6Len+p.Len()]
		if p.Interval == 0 {
			return // parses, but we never send it
		}
		dst := netip.AddrFrom16([16]byte(b[24:40]))
		if dst != Group6 {
			return // Append sums over the group's pseudo-header
		}
		again, err := p.Advert.Append(nil, p.Src)
		if err != nil {
			t.Fatalf("parsed %+v but cannot build it: %v", p, err)
		}
		want := bytes.Clone(msg)
		want[4] &= 0x0f
		if !bytes.Equal(again[:6], want[:6]) || !bytes.Equal(again[8:], want[8:]) {
			t.Fatalf("rebuilt % x from % x", again, msg)
		}
	})
}
