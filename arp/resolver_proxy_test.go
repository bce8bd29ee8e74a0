package arp

import (
	"net/netip"
	"testing"
	"time"
)

// proxyNA is a proxy's answer to our solicitation for rip (RFC 4861
// 7.2.8: solicited, Override clear), with the proxy's MAC.
func proxyNA(t testing.TB, from MAC, rip netip.Addr) []byte {
	return gpNDP(t, ndpSpec{dst: dirMAC, src: from, sip: routerIP6, dip: dirIP6, typ: TypeNeighborAdvertisement,
		flags: FlagSolicited, target: rip, ll: macp(from)})
}

// dadNS is duplicate address detection for rip by a station at from: what
// a Linux real server sends when its address comes up on a new NIC (it
// sends no unsolicited advertisement unless ndisc_notify is set).
func dadNS(t testing.TB, from MAC, rip netip.Addr) []byte {
	sn := solicitedNode(rip)
	return gpNDP(t, ndpSpec{dst: multicastMAC(sn), src: from, sip: zero6, dip: sn, typ: TypeNeighborSolicitation, target: rip})
}

// TestResolverOtherAnswerers: stations that answer for a real server with
// another MAC (a proxy ARP router, a proxy ND), and a server that comes up
// with a new NIC.
func TestResolverOtherAnswerers(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name string
		rip  netip.Addr
		// failed: the entry has failed before the frame; else it is
		// resolved to rs1MAC at t0 and, with refresh, refreshed at 40s.
		failed, refresh bool
		noIP6           bool                      // the director solicits from ::
		frame           func(t testing.TB) []byte // arrives 500ms after the last request
		// answers: the frame's sender answers each of our requests
		// again, 500ms late (a proxy); the server, if not failed,
		// answers each at once.
		answers    bool
		wantMAC    MAC // Lookup after the frame (zero: none)
		wantEvents []Event
		// wantChecks: requests sent in the next 5 s (before any
		// scheduled refresh or retry would go out).
		wantChecks int
	}{
		// Linux (arp_process, locktime): "if several different ARP
		// replies follow back-to-back, use the first one" against ARP
		// thrashing between a server and a proxy ARP router. The late
		// reply made a claim check every second, forever, each answered
		// by both (and the MAC flapping to whoever answered first).
		{name: "proxy ARP reply after the server's", rip: rs1IP, answers: true,
			frame:   func(t testing.TB) []byte { return arpAnswer(t, routerMAC, rs1IP, dirIP, nil) },
			wantMAC: rs1MAC},
		{name: "proxy NA (override clear) after the server's", rip: rs1IP6, answers: true,
			frame:   func(t testing.TB) []byte { return proxyNA(t, routerMAC, rs1IP6) },
			wantMAC: rs1MAC},
		// RFC 4861 7.2.5: an advertisement with Override clear and
		// another MAC MUST NOT update a valid entry. It was taken as the
		// answer to the outstanding refresh: the server's traffic went
		// to the proxy.
		{name: "proxy NA (override clear) while a refresh is outstanding", rip: rs1IP6, refresh: true, answers: true,
			frame:   func(t testing.TB) []byte { return proxyNA(t, routerMAC, rs1IP6) },
			wantMAC: rs1MAC},
		// ... but it does resolve an incomplete entry.
		{name: "proxy NA (override clear) resolves a failed entry when asked", rip: rs1IP6, failed: true, answers: true,
			frame:      func(t testing.TB) []byte { return proxyNA(t, routerMAC, rs1IP6) },
			wantMAC:    routerMAC,
			wantEvents: []Event{{Kind: EventResolved, Addr: rs1IP6, MAC: routerMAC}}},
		// Still a claim: a gratuitous ARP of a new MAC is checked.
		{name: "gratuitous ARP of a new MAC is still checked", rip: rs1IP,
			frame:      func(t testing.TB) []byte { return gpARP(t, nil, broadcast, OpRequest, rs2MAC, rs1IP, MAC{}, rs1IP) },
			wantMAC:    rs1MAC,
			wantChecks: 1},
		// A server's address on a new NIC: Linux sends DAD for it and
		// nothing else; drlb went on sending to the old MAC until the
		// entry went stale, a whole Lifetime (60 s) after the last answer.
		{name: "DAD for the server's address from a new MAC is checked", rip: rs1IP6,
			frame:      func(t testing.TB) []byte { return dadNS(t, rs2MAC, rs1IP6) },
			wantMAC:    rs1MAC,
			wantChecks: 1},
		// Soliciting from ::, our checks look like DAD: another such
		// director's must not make us check (and ours it, forever).
		{name: "DAD-like solicitation when soliciting from :: ourselves", rip: rs1IP6, noIP6: true,
			frame:   func(t testing.TB) []byte { return dadNS(t, rs2MAC, rs1IP6) },
			wantMAC: rs1MAC},
		{name: "DAD from the server's own MAC is nothing new", rip: rs1IP6,
			frame:   func(t testing.TB) []byte { return dadNS(t, rs1MAC, rs1IP6) },
			wantMAC: rs1MAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *ResolverConfig) {
				if tt.noIP6 {
					c.IPv6 = netip.Addr{}
				}
			})
			answer := func(now time.Time) {
				if tt.rip.Is4() {
					f.r.HandleAt(arpAnswer(t, rs1MAC, tt.rip, dirIP, nil), now)
				} else {
					f.r.HandleAt(ndpAnswer(t, rs1MAC, tt.rip, f.r.sip6, nil), now)
				}
			}
			last := t0
			switch {
			case tt.failed:
				f.r.Want(tt.rip)
				f.drive(t0, t0.Add(3*time.Second))
				if s := f.state(tt.rip); s != StateFailed {
					t.Fatalf("state %v, want failed", s)
				}
				// A request out again (FailedRetry).
				last = t0.Add(3*time.Second + DefaultFailedRetry)
				if fr := f.tick(last); len(fr) != 1 {
					t.Fatalf("%d requests at FailedRetry, want 1", len(fr))
				}
				f.takeEvents()
			default:
				f.r.Want(tt.rip)
				f.tick(t0)
				answer(t0)
				f.wantLookup(tt.rip, rs1MAC, true)
				f.takeEvents()
				if tt.refresh {
					last = t0.Add(40 * time.Second)
					if fr := f.tick(last); len(fr) != 1 {
						t.Fatalf("%d refreshes, want 1", len(fr))
					}
				}
			}
			at := last.Add(500 * ms)
			f.r.HandleAt(tt.frame(t), at)
			f.wantLookup(tt.rip, tt.wantMAC, !tt.wantMAC.IsZero())
			f.wantEvents(tt.wantEvents...)
			checks := 0
			for now := at; now.Before(at.Add(5 * time.Second)); now = now.Add(100 * ms) {
				n := len(f.tick(now))
				checks += n
				if n == 0 {
					continue
				}
				if !tt.failed {
					answer(now.Add(10 * ms))
				}
				if tt.answers {
					f.r.HandleAt(tt.frame(t), now.Add(50*ms))
				}
			}
			f.wantLookup(tt.rip, tt.wantMAC, !tt.wantMAC.IsZero())
			f.wantEvents() // no flapping
			if checks != tt.wantChecks {
				t.Errorf("%d requests in the 5 s after the frame, want %d", checks, tt.wantChecks)
			}
		})
	}
}
