package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMachineAddrList: an advert for our VRID whose address list differs
// from ours (another count, or an address of ours missing) is ignored and
// counted as "addr_list", as keepalived 2.2 ignores it (vrrp_check_packet:
// addr_list_err, VRRP_PACKET_KO) in BACKUP and in MASTER: a backup hearing
// only such adverts takes over after the master-down interval, a master
// hearing a higher priority in one stays master. The order of the
// addresses does not matter.
func TestMachineAddrList(t *testing.T) {
	ms := time.Millisecond
	a4 := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, x := range s {
			out = append(out, netip.MustParseAddr(x))
		}
		return out
	}
	type family struct {
		name       string
		self, peer netip.Addr
		ours       []netip.Addr
		pkt        func(src netip.Addr, prio uint8, addrs []netip.Addr) ([]byte, error)
		other      []netip.Addr // an address of the family that is not ours
	}
	fams := []family{
		{"IPv4 (VRRPv3)", self, peer, a4("198.18.0.100", "198.18.0.101"),
			func(src netip.Addr, prio uint8, addrs []netip.Addr) ([]byte, error) {
				return (&Advert{VRID: 51, Priority: prio, Interval: 100 * ms, Addrs: addrs}).AppendIPv4(nil, src, 1)
			}, a4("198.18.0.102")},
		{"IPv6", self6, peer6, a4("2001:2::100", "2001:2::101"),
			func(src netip.Addr, prio uint8, addrs []netip.Addr) ([]byte, error) {
				return (&Advert{VRID: 51, Priority: prio, Interval: 100 * ms, Addrs: addrs}).AppendIPv6(nil, src)
			}, a4("2001:2::102")},
	}
	for _, f := range fams {
		x, y, z := f.ours[0], f.ours[1], f.other[0]
		for _, tc := range []struct {
			name   string
			ours   []netip.Addr
			theirs []netip.Addr
			drop   bool
		}{
			{"same", []netip.Addr{x, y}, []netip.Addr{x, y}, false},
			{"same, other order", []netip.Addr{x, y}, []netip.Addr{y, x}, false},
			{"fewer", []netip.Addr{x, y}, []netip.Addr{x}, true},
			{"none", []netip.Addr{x, y}, nil, true},
			{"more", []netip.Addr{x, y}, []netip.Addr{x, y, z}, true},
			{"different", []netip.Addr{x, y}, []netip.Addr{x, z}, true},
			{"one of ours twice", []netip.Addr{x, y}, []netip.Addr{x, x}, true},
			{"we have none, they have one", nil, []netip.Addr{x}, true},
			{"neither has any", nil, nil, false},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				pkt := func(prio uint8) []byte {
					b, err := f.pkt(f.peer, prio, tc.theirs)
					if err != nil {
						t.Fatal(err)
					}
					return b
				}
				m, err := NewMachine(Config{VRID: 51, Priority: 150, Interval: 100 * ms, Preempt: true, Self: f.self, Addrs: tc.ours})
				if err != nil {
					t.Fatal(err)
				}
				// BACKUP: a higher-priority master's advert keeps us
				// backup past our own master-down interval, unless ignored.
				m.Start(t0)
				down := m.MasterDownInterval()
				out := m.Receive(t0.Add(10*ms), pkt(200))
				if out.AddrMismatch != tc.drop {
					t.Fatalf("backup: Output.AddrMismatch %t, want %t", out.AddrMismatch, tc.drop)
				}
				st := m.Stats()
				if want := map[bool]uint64{true: 1, false: 0}[tc.drop]; st.Ignored["addr_list"] != want || st.Received != 1-want {
					t.Fatalf("backup: ignored %v, received %d; want addr_list %d", st.Ignored, st.Received, want)
				}
				out = m.Tick(t0.Add(down))
				if want := map[bool]State{true: Master, false: Backup}[tc.drop]; m.State() != want {
					t.Fatalf("backup: %v at its master-down interval, want %v (%+v)", m.State(), want, out)
				}
				// MASTER: a higher priority takes the VIPs, unless its
				// advert is ignored.
				if m.State() != Master {
					m.Tick(t0.Add(time.Hour))
				}
				if m.State() != Master {
					t.Fatalf("not master after an hour alone: %v", m.State())
				}
				out = m.Receive(t0.Add(time.Hour+10*ms), pkt(200))
				if want := map[bool]State{true: Master, false: Backup}[tc.drop]; m.State() != want || out.Send || out.AddrMismatch != tc.drop {
					t.Fatalf("master: %v %+v after a higher priority's advert, want %v", m.State(), out, want)
				}
				if want := map[bool]uint64{true: 2, false: 0}[tc.drop]; m.Stats().Ignored["addr_list"] != want {
					t.Fatalf("master: ignored %v, want addr_list %d", m.Stats().Ignored, want)
				}
			})
		}
	}
}

// TestMachineAddrListPriorityZero: a resigning master's advert with
// another address list is ignored too (keepalived checks the list before
// it looks at the priority): the backup takes over after its master-down
// interval, not the skew.
func TestMachineAddrListPriorityZero(t *testing.T) {
	m, err := NewMachine(Config{VRID: 51, Priority: 150, Interval: 100 * time.Millisecond, Preempt: true, Self: self, Addrs: []netip.Addr{vip}})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(t0)
	b, err := (&Advert{VRID: 51, Priority: 0, Interval: 100 * time.Millisecond}).AppendIPv4(nil, peer, 1)
	if err != nil {
		t.Fatal(err)
	}
	down := m.MasterDownInterval()
	m.Receive(t0.Add(10*time.Millisecond), b)
	if next := m.Next(); !next.Equal(t0.Add(down)) {
		t.Fatalf("master-down timer at %v after start, want %v", next.Sub(t0), down)
	}
}

// TestMachineSkipCheckAdvAddr: keepalived's skip_check_adv_addr: a backup
// takes the adverts of the master it follows without checking their
// addresses (its master reloaded with another list: still followed), but
// checks those of any other router, and a master checks every advert.
func TestMachineSkipCheckAdvAddr(t *testing.T) {
	ms := time.Millisecond
	other := netip.MustParseAddr("198.18.0.102")
	adv := func(src netip.Addr, prio uint8, addrs ...netip.Addr) []byte {
		b, err := (&Advert{VRID: 51, Priority: prio, Interval: 100 * ms, Addrs: addrs}).AppendIPv4(nil, src, 1)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m, err := NewMachine(Config{VRID: 51, Priority: 150, Interval: 100 * ms, Preempt: true, Self: self, Addrs: []netip.Addr{vip}, SkipCheckAdvAddr: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(t0)
	if out := m.Receive(t0.Add(10*ms), adv(peer, 200, other)); !out.AddrMismatch {
		t.Fatal("the first advert of a master, not yet followed, was not checked")
	}
	m.Receive(t0.Add(20*ms), adv(peer, 200, vip))
	if out := m.Receive(t0.Add(30*ms), adv(peer, 200, other)); out.AddrMismatch {
		t.Fatal("the followed master's advert was checked")
	}
	third := netip.MustParseAddr("198.18.0.4")
	if out := m.Receive(t0.Add(40*ms), adv(third, 220, other)); !out.AddrMismatch {
		t.Fatal("another router's advert was not checked")
	}
	if st := m.Stats(); st.Ignored["addr_list"] != 2 || st.Received != 2 || st.Master != peer {
		t.Fatalf("stats %+v", st)
	}
	m.Tick(t0.Add(time.Hour))
	if out := m.Receive(t0.Add(time.Hour+10*ms), adv(peer, 200, other)); !out.AddrMismatch || m.State() != Master {
		t.Fatalf("a master did not check the advert: %v %+v", m.State(), out)
	}
}

// TestMachineTakeOtherAddrs: where the list follows the VIPs
// (TakeOtherAddrs: YAML's, every IPv6 one), an advert with another list
// is taken into the election and counted, not ignored: a backup hearing
// its master's adverts after a reload that added a VIP on one director
// only stays backup, where ignoring them made both MASTER.
func TestMachineTakeOtherAddrs(t *testing.T) {
	ms := time.Millisecond
	other := netip.MustParseAddr("198.18.0.102")
	m, err := NewMachine(Config{VRID: 51, Priority: 100, Interval: 100 * ms, Preempt: true, Self: self, Addrs: []netip.Addr{vip, other}, TakeOtherAddrs: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(t0)
	for i := range 50 {
		b, err := (&Advert{VRID: 51, Priority: 200, Interval: 100 * ms, Addrs: []netip.Addr{vip}}).AppendIPv4(nil, peer, 1)
		if err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Duration(i) * 100 * ms)
		if out := m.Receive(now, b); !out.AddrMismatch {
			t.Fatalf("advert %d with another list not flagged", i)
		}
		m.Tick(now.Add(50 * ms))
	}
	st := m.Stats()
	if m.State() != Backup || st.Master != peer {
		t.Fatalf("state %v, master %v: want Backup following %v", m.State(), st.Master, peer)
	}
	if st.AddrListTaken != 50 || st.Received != 50 || st.Ignored["addr_list"] != 0 {
		t.Fatalf("stats %+v: want 50 taken, 50 received, none ignored", st)
	}
}

// TestMachineReceiveAllocs: receiving an advert, one with our addresses
// in another order or one ignored for its list, allocates nothing.
func TestMachineReceiveAllocs(t *testing.T) {
	ours := []netip.Addr{vip, netip.MustParseAddr("198.18.0.101"), netip.MustParseAddr("198.18.0.102")}
	m, err := NewMachine(Config{VRID: 51, Priority: 150, Interval: 100 * time.Millisecond, Preempt: true, Self: self, Addrs: ours})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(t0)
	for _, tc := range []struct {
		name   string
		theirs []netip.Addr
	}{
		{"same", ours},
		{"other order", []netip.Addr{ours[2], ours[0], ours[1]}},
		{"different", []netip.Addr{ours[0], ours[1], netip.MustParseAddr("198.18.0.103")}},
	} {
		b, err := (&Advert{VRID: 51, Priority: 200, Interval: 100 * time.Millisecond, Addrs: tc.theirs}).AppendIPv4(nil, peer, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { m.Receive(t0.Add(time.Millisecond), b) }); n != 0 {
			t.Errorf("%s: %v allocations per advert", tc.name, n)
		}
	}
}

// logRecorder keeps the records a logger wrote.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recs
	l.recs = nil
	return r
}

// TestRunnerAddrListLogBounded: an advert ignored for its address list is
// logged as a warning naming the peer, the VRID, both lists and what
// differs; the same mismatch again is not logged for a minute (then once,
// with the count), another one (another peer, or another list) at once,
// but never more than once a second.
func TestRunnerAddrListLogBounded(t *testing.T) {
	ms := time.Millisecond
	ours := []netip.Addr{vip, netip.MustParseAddr("198.18.0.101")}
	m, err := NewMachine(Config{VRID: 51, Priority: 150, Interval: 100 * ms, Preempt: true, Self: self, Addrs: ours})
	if err != nil {
		t.Fatal(err)
	}
	rec := &logRecorder{}
	now := t0
	r, err := NewRunner(RunnerConfig{Machine: m, Conn: &countConn{}, Self: self, Clock: func() time.Time { return now }, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	r.step(m.Start)
	rec.take()
	adv := func(src netip.Addr, addrs ...netip.Addr) []byte {
		b, err := (&Advert{VRID: 51, Priority: 200, Interval: 100 * ms, Addrs: addrs}).AppendIPv4(nil, src, 1)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other := netip.MustParseAddr("198.18.0.102")
	third := netip.MustParseAddr("198.18.0.4")
	sent := uint64(0)
	recv := func(at time.Duration, pkt []byte) []string {
		sent++
		now = t0.Add(at)
		r.step(func(now time.Time) Output { return m.Receive(now, pkt) })
		var warns []string
		for _, l := range rec.take() {
			if strings.Contains(l, "address list") {
				warns = append(warns, l)
			}
		}
		return warns
	}
	fewer, wrong := adv(peer, vip), adv(peer, vip, other)
	// The first: logged, with everything an operator needs.
	logs := recv(10*ms, fewer)
	if len(logs) != 1 {
		t.Fatalf("first mismatch: %d logs %q, want 1", len(logs), logs)
	}
	for _, want := range []string{"WARN", "peer=198.18.0.3", "vrid=51", "ours=[198.18.0.100 198.18.0.101]", "theirs=[198.18.0.100]", "missing=[198.18.0.101]", "ignored=1"} {
		if !strings.Contains(logs[0], want) {
			t.Errorf("log %q lacks %q", logs[0], want)
		}
	}
	// The same again, at 10 adverts a second: quiet for a minute.
	for at := 110 * ms; at < 60*time.Second; at += 100 * ms {
		if logs := recv(at, fewer); len(logs) != 0 {
			t.Fatalf("the same mismatch at %v: logged again %q", at, logs)
		}
	}
	// Another list from the same peer: at once.
	logs = recv(60*time.Second, wrong)
	if len(logs) != 1 || !strings.Contains(logs[0], "theirs=[198.18.0.100 198.18.0.102]") ||
		!strings.Contains(logs[0], "missing=[198.18.0.101]") || !strings.Contains(logs[0], "unexpected=[198.18.0.102]") {
		t.Fatalf("another list: %q", logs)
	}
	// Another peer within the second: held back, then logged.
	if logs := recv(60*time.Second+100*ms, adv(third, vip)); len(logs) != 0 {
		t.Fatalf("a second log within a second: %q", logs)
	}
	if logs := recv(61*time.Second, adv(third, vip)); len(logs) != 1 || !strings.Contains(logs[0], "peer=198.18.0.4") {
		t.Fatalf("another peer after a second: %q", logs)
	}
	// The known ones, alternating: quiet until a minute has passed since
	// the last log, then one reminder with the count.
	var reminders []string
	for at := 61*time.Second + 100*ms; at <= 122*time.Second; at += 100 * ms {
		pkt := fewer
		if at/(100*ms)%2 == 0 {
			pkt = wrong
		}
		reminders = append(reminders, recv(at, pkt)...)
	}
	if len(reminders) != 1 || !strings.Contains(reminders[0], "ignored=") {
		t.Fatalf("reminders over a minute: %q, want 1", reminders)
	}
	if n := m.Stats().Ignored["addr_list"]; n != sent {
		t.Errorf("counted %d of %d", n, sent)
	}
	// Our list changed (a reload): the same advert differs in another
	// way, and is logged again at once (a second after the last log).
	if err := r.SetAddrs([]netip.Addr{vip, other, third}, false); err != nil {
		t.Fatal(err)
	}
	if logs := recv(124*time.Second, fewer); len(logs) != 1 || !strings.Contains(logs[0], "missing=[198.18.0.102 198.18.0.4]") {
		t.Fatalf("the same advert after our list changed: %q, want one log with what is missing now", logs)
	}
}
