package vrrp

import (
	"bytes"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
)

var (
	self = netip.MustParseAddr("198.18.0.2")
	peer = netip.MustParseAddr("198.18.0.3")
	vip  = netip.MustParseAddr("198.18.0.100")
)

// keepalivedAdvert is the first advert keepalived 2.2.7 sent in the lab
// (vrrp_version 3, virtual_router_id 51, priority 200, advert_int 0.1,
// virtual_ipaddress 198.18.0.100, from 198.18.0.3): the IPv4 packet of
// testdata/keepalived-advert.pcap.
func keepalivedAdvert(t *testing.T) []byte {
	t.Helper()
	p := testutil.ReadPcap(t, filepath.Join("testdata", "keepalived-advert.pcap"))
	if len(p) != 1 || len(p[0].Data) < 14 {
		t.Fatalf("want one Ethernet frame, got %d", len(p))
	}
	return p[0].Data[14:]
}

func TestParseKeepalivedAdvert(t *testing.T) {
	p, err := ParseIPv4(keepalivedAdvert(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Src != peer || p.TTL != 255 || p.VRID != 51 || p.Priority != 200 || p.Interval != 100*time.Millisecond ||
		len(p.Addrs) != 1 || p.Addrs[0] != vip {
		t.Fatalf("parsed %+v", p)
	}
}

// TestAppendIsKeepalived: the same advert built by drlb is byte for byte
// what keepalived sent (IP header with TOS 0xc0 and ID 1, VRRP message,
// checksum over the IPv4 pseudo-header).
func TestAppendIsKeepalived(t *testing.T) {
	want := keepalivedAdvert(t)
	a := Advert{VRID: 51, Priority: 200, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}}
	got, err := a.AppendIPv4(nil, peer, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("built\n% x\nkeepalived sent\n% x", got, want)
	}
}

func TestParseRefuses(t *testing.T) {
	good := func() []byte {
		a := Advert{VRID: 7, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip}}
		b, err := a.AppendIPv4(nil, peer, 9)
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
		{"ttl 254 (routed)", func(b []byte) []byte { b[8] = 254; return b }, ErrTTL, "ttl"},
		{"version 2", func(b []byte) []byte { b[20] = 0x21; return b }, ErrVersion, "version"},
		{"not an advert", func(b []byte) []byte { b[20] = 0x32; return b }, ErrType, "malformed"},
		{"bad checksum", func(b []byte) []byte { b[22]++; return b }, ErrChecksum, "checksum"},
		{"count too high", func(b []byte) []byte { b[23] = 2; return b }, ErrLength, "malformed"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrNotIPv4, "malformed"},
		{"other protocol", func(b []byte) []byte { b[9] = 17; return b }, ErrProtocol, "malformed"},
		{"short", func(b []byte) []byte { return b[:10] }, ErrShort, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIPv4(tc.change(good()), nil)
			if !errors.Is(err, tc.want) || Reason(err) != tc.reason {
				t.Fatalf("err %v (reason %s), want %v (%s)", err, Reason(err), tc.want, tc.reason)
			}
		})
	}
}

func TestAppendRefuses(t *testing.T) {
	for _, a := range []Advert{
		{VRID: 1, Priority: 1, Interval: 105 * time.Millisecond},
		{VRID: 1, Priority: 1, Interval: 41 * time.Second},
		{VRID: 1, Priority: 1, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("2001:2::100")}},
	} {
		if _, err := a.AppendIPv4(nil, self, 1); err == nil {
			t.Errorf("%+v: no error", a)
		}
	}
}

// FuzzParseIPv4: no input panics; what parses is built again to the same
// VRRP message.
func FuzzParseIPv4(f *testing.F) {
	a := Advert{VRID: 51, Priority: 200, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip, self}}
	b, _ := a.AppendIPv4(nil, peer, 1)
	f.Add(b)
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseIPv4(b, nil)
		if err != nil {
			return
		}
		ihl := int(b[0]&0x0f) * 4
		msg := b[ihl : ihl+p.Len()]
		if p.Interval == 0 {
			return // parses, but we never send it
		}
		again, err := p.Advert.Append(nil, p.Src)
		if err != nil {
			t.Fatalf("parsed %+v but cannot build it: %v", p, err)
		}
		// The reserved bits are not kept; the rest is the same.
		want := bytes.Clone(msg)
		want[4] &= 0x0f
		if !bytes.Equal(again[:6], want[:6]) || !bytes.Equal(again[8:], want[8:]) {
			t.Fatalf("rebuilt % x from % x", again, msg)
		}
	})
}
