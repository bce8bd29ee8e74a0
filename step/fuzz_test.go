package step_test

import (
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/step"
)

// FuzzHandle: no frame, however broken, crashes the step or its narrator,
// and whatever it sends is a frame of at least an Ethernet header.
func FuzzHandle(f *testing.F) {
	seeds := [][]byte{
		framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: broadcast}, router, vip),
		framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: broadcast, Outer: 100, VLAN: 10}, router, vip),
		framegen.NeighborSolicitation(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0x33, 0x33, 0xff, 0, 1, 0}}, router6, vip6),
		framegen.TCP(toDirector, client, web, framegen.SYN, 1, 0, nil),
		framegen.TCP(toDirector, client, web, framegen.SYN, 2, 0, make([]byte, 1600)),
		framegen.TCP(toDirector, netip.MustParseAddrPort("[2001:2:0:1::10]:44000"), netip.AddrPortFrom(vip6, 80), framegen.SYN, 1, 0, make([]byte, 1500)),
		{},
		make([]byte, 13),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	s := newStep(f, &fuzzObserver{n: step.NewNarrator(io.Discard, testConfig(), step.NarratorOptions{Numbered: true})})
	now := t0
	f.Fuzz(func(t *testing.T, frame []byte) {
		now += 1e6
		in := []link.Frame{{Data: append(make([]byte, 0, link.MaxFrame), frame...)}}
		for _, o := range s.Handle(now, in, nil) {
			if len(o.Data) < 14 {
				t.Fatalf("sent a %d-byte frame", len(o.Data))
			}
		}
	})
}

// fuzzObserver describes and narrates every frame, so the narrator's
// parsing of what was sent is fuzzed too.
type fuzzObserver struct{ n *step.Narrator }

func (o *fuzzObserver) Wants(now int64) bool  { return o.n.Wants(now) }
func (o *fuzzObserver) Observe(e *step.Event) { o.n.Observe(e) }
