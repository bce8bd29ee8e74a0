package director

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/link"
	"github.com/vishvananda/netlink"

	"golang.org/x/sys/unix"
)

func TestLinkStateUpdate(t *testing.T) {
	const up, running = unix.IFF_UP, unix.IFF_RUNNING
	type msg struct {
		typ    uint16
		family uint8
		index  int32
		flags  uint32
		// what must follow
		changed, up bool
		reason      string
	}
	tests := []struct {
		name    string
		msgs    []msg
		deleted bool // the interface is gone: the director stops
	}{
		{"up at start: no change", []msg{{unix.RTM_NEWLINK, 0, 4, up | running, false, true, ""}}, false},
		{"down at start: a change", []msg{{unix.RTM_NEWLINK, 0, 4, up, true, false, "eth0: no carrier"}}, false},
		{"carrier lost, then back", []msg{
			{unix.RTM_NEWLINK, 0, 4, up | running, false, true, ""},
			{unix.RTM_NEWLINK, 0, 4, up, true, false, "eth0: no carrier"},
			{unix.RTM_NEWLINK, 0, 4, 0, false, false, ""}, // then set down: still down
			{unix.RTM_NEWLINK, 0, 4, up | running, true, true, "eth0: link up"},
			{unix.RTM_NEWLINK, 0, 4, up | running, false, true, ""},
		}, false},
		{"set down", []msg{{unix.RTM_NEWLINK, 0, 4, running, true, false, "eth0 set down"}}, false},
		{"deleted", []msg{{unix.RTM_DELLINK, 0, 4, up | running, true, false, "eth0 deleted"}}, true},
		{"down, then deleted", []msg{
			{unix.RTM_NEWLINK, 0, 4, 0, true, false, "eth0 set down"},
			{unix.RTM_DELLINK, 0, 4, 0, false, false, ""},
		}, true},
		{"a bridge's message about its port: ignored", []msg{{unix.RTM_DELLINK, unix.AF_BRIDGE, 4, up | running, false, true, ""}}, false},
		{"another interface: ignored", []msg{
			{unix.RTM_NEWLINK, 0, 5, 0, false, true, ""},
			{unix.RTM_DELLINK, 0, 5, 0, false, true, ""},
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := linkState{ifindex: 4, ifname: "eth0"}
			for i, m := range tc.msgs {
				changed, isUp, reason := st.update(m.typ, m.family, m.index, m.flags)
				if changed != m.changed || isUp != m.up || reason != m.reason {
					t.Fatalf("message %d: changed=%t up=%t %q, want %t %t %q", i, changed, isUp, reason, m.changed, m.up, m.reason)
				}
			}
			if st.deleted != tc.deleted {
				t.Fatalf("deleted %t, want %t", st.deleted, tc.deleted)
			}
		})
	}
}

// serveUntilGone serves a director on an in-memory port; done gets
// Serve's error.
func serveUntilGone(t *testing.T) (d *Director, ctx context.Context, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	dirPort, wire := link.Pipe()
	t.Cleanup(func() { wire.Close() })
	d, err := New(configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC))), dirPort, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Serve(ctx) }()
	return d, ctx, cancel, errc
}

// wantGone waits for Serve to end with ErrInterfaceGone naming ifname
// (10 s: a hang guard).
func wantGone(t *testing.T, done <-chan error, ifname string) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterfaceGone) || !strings.Contains(err.Error(), ifname) {
			t.Fatalf("Serve: %v, want ErrInterfaceGone naming %s", err, ifname)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Serve still runs 10 s after %s was deleted", ifname)
	}
}

// TestServeEndsWhenInterfaceDeleted: the interface deleted, Serve
// returns ErrInterfaceGone. The sockets were bound to its index and
// would have waited for good, deaf to one created again under its name.
// A message about another interface changes nothing.
func TestServeEndsWhenInterfaceDeleted(t *testing.T) {
	d, ctx, cancel, done := serveUntilGone(t)
	defer cancel()

	updates := make(chan netlink.LinkUpdate, 2)
	msg := func(typ uint16, index int32) netlink.LinkUpdate {
		var u netlink.LinkUpdate
		u.Header.Type, u.Index, u.Flags = typ, index, unix.IFF_UP|unix.IFF_RUNNING
		return u
	}
	updates <- msg(unix.RTM_DELLINK, 5)
	updates <- msg(unix.RTM_DELLINK, 4)
	close(updates)
	d.followLink(ctx, &linkState{ifindex: 4, ifname: "eth0"}, updates)
	wantGone(t, done, "eth0")
}

// TestHALinkDownAndBack: a director whose link goes down is FAULT; when
// it is back it is BACKUP and copies the table from its peer again (the
// connections carried meanwhile), holding preemption until it has.
func TestHALinkDownAndBack(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	d1, w1 := syncDirector(t, &n, a1, a1, a2)
	d2, _ := syncDirector(t, &n, a2, a1, a2)
	waitFor(t, "the bulk copy, the election started", func() bool {
		s := d2.Snapshot(false).HA
		return s.Sync.Bulk == "done" && s.State != "INIT" // BACKUP, or MASTER alone
	})
	if e := d2.Snapshot(false).HA.Sync.BulkEntries; e != 0 {
		t.Fatalf("first bulk copy: %d entries, want 0", e)
	}
	d2.ha.linkChanged(false, "eth0: no carrier")
	if s := d2.Snapshot(false).HA.State; s != "FAULT" {
		t.Fatalf("link down: %s, want FAULT", s)
	}
	for i := range 3 {
		forwardTo(t, d1, w1, clientAt(i), "S")
	}
	d2.ha.linkChanged(true, "eth0: link up")
	if s := d2.Snapshot(false).HA.State; s != "BACKUP" && s != "MASTER" { // alone: MASTER after the master-down interval
		t.Fatalf("link up: %s, want BACKUP", s)
	}
	waitFor(t, "the second bulk copy", func() bool {
		st := d2.Snapshot(false).HA.Sync
		return st.Bulk == "done" && st.BulkEntries == 3 && st.BulkFrom == a1
	})
}

// TestWatchLinkFindsInterfaceAlreadyGone: an interface deleted while no
// subscription listened (between Run's look-up and the first one, or
// between two: a netlink overflow ends one, and a burst of link changes
// is when that comes) sends no message to the next: the watch must see
// that its index is gone, or the director stays deaf for good.
func TestWatchLinkFindsInterfaceAlreadyGone(t *testing.T) {
	ns := testutil.NewNS(t)
	testutil.Veth(t, testutil.End{NS: ns, Name: "gone0"}, testutil.End{NS: ns, Name: "gone1"})
	h := testutil.NetlinkHandle(t, ns)
	l, err := h.LinkByName("gone0")
	if err != nil {
		t.Fatal(err)
	}
	index := l.Attrs().Index
	if err := h.LinkDel(l); err != nil { // deletes gone1 with it
		t.Fatal(err)
	}

	d, ctx, cancel, done := serveUntilGone(t)
	defer cancel()
	watched := make(chan error, 1)
	go func() {
		watched <- testutil.Do(ns, func() error { d.watchLink(ctx, "gone0", index); return nil })
	}()
	wantGone(t, done, "gone0")
	cancel()
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
}
