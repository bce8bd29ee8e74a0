package arp

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket/layers"
)

func TestGratuitous(t *testing.T) {
	tests := []struct {
		name string
		vip  netip.Addr
		vlan VLAN
		out  int
		want int // frame length, 0 = refused
	}{
		{"IPv4", vip4, NoVLAN, MaxFrameLen, MinFrameLen},
		{"IPv4 tagged", vip4, VLANID(300), MaxFrameLen, MinFrameLen},
		{"IPv4-mapped", netip.AddrFrom16(vip4.As16()), NoVLAN, MaxFrameLen, MinFrameLen},
		{"IPv6", vip6, NoVLAN, MaxFrameLen, wire.EthernetLen + ipv6Len + ndpLen + optLLLen},
		{"IPv6 tagged", vip6, VLAN{Tagged: true, TCI: 0x2001}, MaxFrameLen, wire.EthernetLen + wire.TagLen + ipv6Len + ndpLen + optLLLen},
		{"invalid", netip.Addr{}, NoVLAN, MaxFrameLen, 0},
		{"unspecified", zero4, NoVLAN, MaxFrameLen, 0},
		{"multicast", allNodes, NoVLAN, MaxFrameLen, 0},
		{"short buffer IPv4", vip4, NoVLAN, MinFrameLen - 1, 0},
		{"short buffer IPv6", vip6, NoVLAN, wire.EthernetLen + ipv6Len + ndpLen, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]byte, tt.out)
			n := Gratuitous(dirMAC, tt.vip, tt.vlan, out)
			if n != tt.want {
				t.Fatalf("length %d, want %d", n, tt.want)
			}
			if n == 0 {
				return
			}
			d := gpDecode(t, out[:n])
			if tt.vlan.Tagged != (d.vlan != nil) || (d.vlan != nil && d.vlan.VLANIdentifier != tt.vlan.ID()) {
				t.Fatalf("tag %+v, want %+v", d.vlan, tt.vlan)
			}
			if MAC(d.eth.SrcMAC) != dirMAC {
				t.Errorf("source MAC %v", d.eth.SrcMAC)
			}
			vip := tt.vip.Unmap()
			if vip.Is4() {
				// keepalived's form: a broadcast request, sender = target = VIP.
				a := d.arp
				if MAC(d.eth.DstMAC) != broadcast || a.Operation != layers.ARPRequest || MAC(a.SourceHwAddress) != dirMAC ||
					[4]byte(a.SourceProtAddress) != vip.As4() || [4]byte(a.DstProtAddress) != vip.As4() || MAC(a.DstHwAddress) != (MAC{}) {
					t.Fatalf("gratuitous ARP %v -> %v: %+v", d.eth.SrcMAC, d.eth.DstMAC, a)
				}
				return
			}
			if MAC(d.eth.DstMAC) != (MAC{0x33, 0x33, 0, 0, 0, 1}) || !d.ip6.DstIP.Equal(ip(allNodes)) || !d.ip6.SrcIP.Equal(ip(vip)) || d.ip6.HopLimit != 255 {
				t.Fatalf("unsolicited NA header %v -> %v / %v -> %v hop %d", d.eth.SrcMAC, d.eth.DstMAC, d.ip6.SrcIP, d.ip6.DstIP, d.ip6.HopLimit)
			}
			if d.na == nil || d.na.Flags != FlagOverride || !d.na.TargetAddress.Equal(ip(vip)) {
				t.Fatalf("unsolicited NA %+v", d.na)
			}
			if ll, ok := llOption(d.na.Options, layers.ICMPv6OptTargetAddress); !ok || ll != dirMAC {
				t.Fatalf("target link-layer option %v %v", ll, ok)
			}
		})
	}
}

// Our own announcements, read back, must neither be answered nor be
// counted as conflicts; another director's must count as conflicts.
func TestGratuitousSeenByResponder(t *testing.T) {
	r := newTestResponder(t, nil)
	var buf, out [MaxFrameLen]byte
	for _, vip := range []netip.Addr{vip4, vip6} {
		n := Gratuitous(dirMAC, vip, NoVLAN, buf[:])
		if _, ok := r.Handle(buf[:n], out[:]); ok {
			t.Fatalf("%v: answered our own announcement", vip)
		}
		n = Gratuitous(evilMAC, vip, NoVLAN, buf[:])
		if _, ok := r.Handle(buf[:n], out[:]); ok {
			t.Fatalf("%v: answered another station's announcement", vip)
		}
	}
	if st := r.Stats(); st.Conflicts != 2 || st.Replies != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAnnouncerSchedule(t *testing.T) {
	tests := []struct {
		name     string
		count    int
		interval time.Duration
		wantN    int
		wantGap  time.Duration
	}{
		{"keepalived defaults", 0, 0, 5, time.Second},
		{"3 every 200ms", 3, 200 * time.Millisecond, 3, 200 * time.Millisecond},
		{"once", 1, time.Hour, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			a, err := NewAnnouncer(AnnouncerConfig{MAC: dirMAC, VLAN: VLANID(9), Count: tt.count, Interval: tt.interval, Sender: rec, Clock: newFakeClock()})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Announce(vip4, vip6); err != nil {
				t.Fatal(err)
			}
			if a.Pending() != 2*tt.wantN {
				t.Fatalf("pending %d", a.Pending())
			}
			now := t0
			var times []time.Time
			for i := 0; i < 100; i++ {
				before := rec.count()
				next, err := a.Tick(now)
				if err != nil {
					t.Fatal(err)
				}
				if got := rec.count() - before; got != 0 {
					if got != 2 {
						t.Fatalf("tick %v sent %d frames, want one per VIP", now, got)
					}
					times = append(times, now)
				}
				// A tick before the next deadline sends nothing.
				if !next.IsZero() {
					if _, err := a.Tick(next.Add(-time.Nanosecond)); err != nil || rec.count()-before != 2 {
						t.Fatalf("early tick sent frames")
					}
				}
				if next.IsZero() {
					break
				}
				now = next
			}
			if len(times) != tt.wantN {
				t.Fatalf("%d rounds, want %d", len(times), tt.wantN)
			}
			for i := 1; i < len(times); i++ {
				if gap := times[i].Sub(times[i-1]); gap != tt.wantGap {
					t.Fatalf("gap %v, want %v", gap, tt.wantGap)
				}
			}
			if a.Pending() != 0 || a.Sent() != uint64(2*tt.wantN) {
				t.Fatalf("pending %d sent %d", a.Pending(), a.Sent())
			}
			for _, f := range rec.take() {
				d := gpDecode(t, f)
				if d.vlan == nil || d.vlan.VLANIdentifier != 9 {
					t.Fatalf("announcement without the configured tag")
				}
			}
		})
	}
}

func TestAnnouncerRestartAndErrors(t *testing.T) {
	rec := &recorder{err: errors.New("link down")}
	a, err := NewAnnouncer(AnnouncerConfig{MAC: dirMAC, Count: 2, Sender: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Announce(vip4, netip.Addr{}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("invalid VIP: %v", err)
	}
	if _, err := a.Tick(t0); err == nil {
		t.Fatal("send error not reported")
	}
	if a.Errors() != 1 || a.Pending() != 1 {
		t.Fatalf("errors %d pending %d", a.Errors(), a.Pending())
	}
	// Announcing again (say after a conflict) restarts the count.
	a.Announce(vip4)
	if a.Pending() != 2 {
		t.Fatalf("pending %d after restart", a.Pending())
	}
	for _, bad := range []AnnouncerConfig{
		{MAC: MAC{}, Sender: rec},
		{MAC: dirMAC},
		{MAC: dirMAC, Sender: rec, Count: -1},
	} {
		if _, err := NewAnnouncer(bad); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v accepted: %v", bad, err)
		}
	}
}

// TestAnnouncerStopsForVIPsGivenUp: a VIP withdrawn, or one Owned no
// longer holds (a reload removed it), gets none of its remaining
// announcements; the others go on.
func TestAnnouncerStopsForVIPsGivenUp(t *testing.T) {
	tests := []struct {
		name    string
		giveUp  func(a *Announcer, owned map[netip.Addr]bool)
		withOwn bool
	}{
		{"withdrawn", func(a *Announcer, _ map[netip.Addr]bool) { a.Withdraw(vip6) }, false},
		{"withdrawn, Owned set", func(a *Announcer, _ map[netip.Addr]bool) { a.Withdraw(vip6) }, true},
		{"no longer owned", func(_ *Announcer, owned map[netip.Addr]bool) { owned[vip6] = false }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			owned := map[netip.Addr]bool{vip4: true, vip6: true}
			cfg := AnnouncerConfig{MAC: dirMAC, Count: 3, Sender: rec, Clock: newFakeClock()}
			if tt.withOwn {
				cfg.Owned = func(v netip.Addr) bool { return owned[v] }
			}
			a, err := NewAnnouncer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Announce(vip4, vip6); err != nil {
				t.Fatal(err)
			}
			next, _ := a.Tick(t0)
			if rec.count() != 2 {
				t.Fatalf("first tick sent %d, want one per VIP", rec.count())
			}
			tt.giveUp(a, owned)
			for !next.IsZero() {
				next, _ = a.Tick(next)
			}
			var v4, v6 int
			for _, f := range rec.take()[2:] {
				if d := gpDecode(t, f); d.arp != nil {
					v4++
				} else {
					v6++
				}
			}
			if v4 != 2 || v6 != 0 {
				t.Fatalf("after giving %v up: %d more announcements of %v, %d of %v; want 2 and 0", vip6, v4, vip4, v6, vip6)
			}
			if a.Pending() != 0 {
				t.Fatalf("pending %d", a.Pending())
			}
		})
	}
}

func TestAnnouncerRun(t *testing.T) {
	clk := newFakeClock()
	rec := &recorder{}
	a, err := NewAnnouncer(AnnouncerConfig{MAC: dirMAC, Sender: rec, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	a.Announce(vip4)
	stepClock(t, clk, DefaultAnnounceInterval, func() bool { return a.Sent() >= DefaultAnnounceCount })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if a.Sent() != DefaultAnnounceCount {
		t.Fatalf("sent %d, want %d", a.Sent(), DefaultAnnounceCount)
	}
}

// stepClock advances clk by step each time a Run loop waits on it, until
// done. The wall-clock bound only stops a broken test from hanging.
func stepClock(t *testing.T, clk *fakeClock, step time.Duration, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		select {
		case <-clk.added:
			clk.Advance(step)
		case <-time.After(time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("Run loop made no progress")
			}
		}
	}
}
