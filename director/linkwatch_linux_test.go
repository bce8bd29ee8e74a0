package director

import (
	"net/netip"
	"testing"

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
		name string
		msgs []msg
	}{
		{"up at start: no change", []msg{{unix.RTM_NEWLINK, 0, 4, up | running, false, true, ""}}},
		{"down at start: a change", []msg{{unix.RTM_NEWLINK, 0, 4, up, true, false, "eth0: no carrier"}}},
		{"carrier lost, then back", []msg{
			{unix.RTM_NEWLINK, 0, 4, up | running, false, true, ""},
			{unix.RTM_NEWLINK, 0, 4, up, true, false, "eth0: no carrier"},
			{unix.RTM_NEWLINK, 0, 4, 0, false, false, ""}, // then set down: still down
			{unix.RTM_NEWLINK, 0, 4, up | running, true, true, "eth0: link up"},
			{unix.RTM_NEWLINK, 0, 4, up | running, false, true, ""},
		}},
		{"set down", []msg{{unix.RTM_NEWLINK, 0, 4, running, true, false, "eth0 set down"}}},
		{"deleted", []msg{{unix.RTM_DELLINK, 0, 4, up | running, true, false, "eth0 deleted"}}},
		{"a bridge's message about its port: ignored", []msg{{unix.RTM_DELLINK, unix.AF_BRIDGE, 4, up | running, false, true, ""}}},
		{"another interface: ignored", []msg{
			{unix.RTM_NEWLINK, 0, 5, 0, false, true, ""},
			{unix.RTM_DELLINK, 0, 5, 0, false, true, ""},
		}},
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
		})
	}
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
