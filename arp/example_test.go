package arp_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/drlb/drlb/arp"
)

var (
	director = arp.MAC{0x02, 0, 0, 0, 0, 0x02}
	router   = arp.MAC{0x02, 0, 0, 0, 0, 0x01}
	rs1      = arp.MAC{0x02, 0, 0, 0, 0, 0x11}
	vip      = netip.MustParseAddr("198.18.0.100")
)

func ExampleParseARP() {
	// A who-has VIP as the router sends it, on VLAN 42.
	req := arp.ARPPacket{
		Ethernet:  arp.Ethernet{Dst: arp.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Src: router, VLAN: arp.VLANID(42)},
		Op:        arp.OpRequest,
		SenderMAC: router,
		SenderIP:  netip.MustParseAddr("198.18.0.1"),
		TargetIP:  vip,
	}
	var frame [arp.MaxFrameLen]byte
	n := req.Encode(frame[:])

	p, err := arp.ParseARP(frame[:n])
	fmt.Println(p.Op, p.SenderIP, "asks for", p.TargetIP, "on VLAN", p.Ethernet.VLAN.ID(), err)

	_, err = arp.ParseARP(frame[:30])
	fmt.Println(err)
	// Output:
	// 1 198.18.0.1 asks for 198.18.0.100 on VLAN 42 <nil>
	// arp: ARP body length = 12 at offset 18: truncated frame
}

func ExampleResponder_Handle() {
	r, err := arp.NewResponder(arp.ResponderConfig{
		MAC:        director,
		VIPs:       []netip.Addr{vip},
		OnConflict: func(c arp.Conflict) { fmt.Println("conflict:", c.MAC, "claims", c.VIP) },
	})
	if err != nil {
		panic(err)
	}
	req := arp.ARPPacket{
		Ethernet:  arp.Ethernet{Dst: arp.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Src: router},
		Op:        arp.OpRequest,
		SenderMAC: router,
		SenderIP:  netip.MustParseAddr("198.18.0.1"),
		TargetIP:  vip,
	}
	var in, out [arp.MaxFrameLen]byte
	n := req.Encode(in[:])
	if m, ok := r.Handle(in[:n], out[:]); ok {
		rep, _ := arp.ParseARP(out[:m])
		fmt.Println(rep.SenderIP, "is-at", rep.SenderMAC, "->", rep.Ethernet.Dst)
	}

	// Another station announcing our VIP is not answered, but reported.
	n = arp.Gratuitous(rs1, vip, arp.NoVLAN, in[:])
	_, ok := r.Handle(in[:n], out[:])
	fmt.Println("answered:", ok, "stats:", r.Stats().Replies, r.Stats().Conflicts)
	// Output:
	// 198.18.0.100 is-at 02:00:00:00:00:02 -> 02:00:00:00:00:01
	// conflict: 02:00:00:00:00:11 claims 198.18.0.100
	// answered: false stats: 1 1
}

func ExampleGratuitous() {
	var frame [arp.MaxFrameLen]byte
	n := arp.Gratuitous(director, vip, arp.NoVLAN, frame[:])
	p, _ := arp.ParseARP(frame[:n])
	fmt.Println(p.Ethernet.Dst, p.SenderIP, p.TargetIP, p.IsGratuitous())

	n = arp.Gratuitous(director, netip.MustParseAddr("2001:db8::100"), arp.NoVLAN, frame[:])
	na, _ := arp.ParseNDP(frame[:n])
	fmt.Println(na.Dst, na.Target, na.Flags == arp.FlagOverride, na.TargetLL)
	// Output:
	// ff:ff:ff:ff:ff:ff 198.18.0.100 198.18.0.100 true
	// ff02::1 2001:db8::100 true 02:00:00:00:00:02
}

func ExampleAnnouncer() {
	sent := 0
	a, _ := arp.NewAnnouncer(arp.AnnouncerConfig{
		MAC:    director,
		Sender: arp.SenderFunc(func([]byte) error { sent++; return nil }),
	})
	a.Announce(vip)
	// The live director calls a.Run(ctx); here Tick is driven by hand.
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for {
		next, _ := a.Tick(now)
		if next.IsZero() {
			break
		}
		now = next
	}
	fmt.Println(sent, "announcements")
	// Output: 5 announcements
}

func ExampleResolver() {
	rip := netip.MustParseAddr("198.18.0.11")
	var request []byte
	r, _ := arp.NewResolver(arp.ResolverConfig{
		MAC:    director,
		IPv4:   netip.MustParseAddr("198.18.0.2"),
		Sender: arp.SenderFunc(func(f []byte) error { request = append(request[:0], f...); return nil }),
		OnEvent: func(e arp.Event) {
			fmt.Println(e.Kind, e.Addr, e.MAC)
		},
	})
	r.Want(rip)
	r.Tick(time.Now()) // sends who-has 198.18.0.11

	// The real server answers (built here by hand from the request).
	q, _ := arp.ParseARP(request)
	reply := arp.ARPPacket{
		Ethernet:  arp.Ethernet{Dst: q.SenderMAC, Src: rs1},
		Op:        arp.OpReply,
		SenderMAC: rs1, SenderIP: q.TargetIP,
		TargetMAC: q.SenderMAC, TargetIP: q.SenderIP,
	}
	var frame [arp.MaxFrameLen]byte
	r.Handle(frame[:reply.Encode(frame[:])])

	mac, ok := r.Lookup(rip) // the forwarder's per-frame lookup
	fmt.Println(mac, ok)

	// The live director runs the schedule in the background.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println(r.Run(ctx))
	// Output:
	// resolved 198.18.0.11 02:00:00:00:00:11
	// 02:00:00:00:00:11 true
	// context canceled
}
