package vrrp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// advertFrom is an advert packet from src as it arrives.
func advertFrom(t *testing.T, src netip.Addr, vrid, prio uint8, interval time.Duration) []byte {
	t.Helper()
	a := Advert{VRID: vrid, Priority: prio, Interval: interval, Addrs: []netip.Addr{vip}}
	b, err := a.AppendIPv4(nil, src, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// step is one event of a scenario at a time after t0.
type step struct {
	at   time.Duration
	do   string // "start", "stop", "tick", "recv", "down", "up"
	from netip.Addr
	prio uint8
	ivl  time.Duration // the sender's interval (default 100ms)
	vrid uint8         // default 51
	pkt  func([]byte) []byte
	// what must follow
	state State
	send  bool
	why   string // substring of the transition's reason ("" = no transition)
	// substring of Output.Reassert ("" = none)
	reassert string
}

func TestMachine(t *testing.T) {
	ms := time.Millisecond
	cfg := Config{VRID: 51, Priority: 150, Interval: 100 * ms, Preempt: true, Self: self, Addrs: []netip.Addr{vip}}
	// master-down interval at priority 150, 100 ms: 300 + 106*100/256 = 341.40625 ms.
	down := 300*ms + 106*100*ms/256
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{"alone: backup, then master after the master-down interval", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: down - 1, do: "tick", state: Backup},
			{at: down, do: "tick", state: Master, send: true, why: "master-down interval (341.40625ms)"},
			{at: down + 100*ms, do: "tick", state: Master, send: true},
			{at: down + 150*ms, do: "tick", state: Master},
			{at: down + 200*ms, do: "stop", state: Init, send: true, why: "stop"},
		}},
		{"a higher master keeps us backup", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 200 * ms, do: "recv", from: peer, prio: 200, state: Backup},
			{at: 500 * ms, do: "recv", from: peer, prio: 200, state: Backup},
			{at: 500*ms + down - 1, do: "tick", state: Backup},
			// skew follows our priority, interval the master's
			{at: 500*ms + down, do: "tick", state: Master, send: true, why: "no advert from master 198.18.0.3 (priority 200)"},
		}},
		{"the master's interval counts, not ours", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 10 * ms, do: "recv", from: peer, prio: 200, ivl: time.Second, state: Backup},
			{at: 10*ms + down + 1, do: "tick", state: Backup},
			{at: 10*ms + 3*time.Second + 106*time.Second/256, do: "tick", state: Master, send: true, why: "3.4140625s"},
		}},
		{"a master's priority lowered (a reload): its advert says so at once, and a higher one takes over", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
			{at: down + 10*ms, do: "recv", from: peer, prio: 120, state: Master, send: true, reassert: "below ours (150)"},
			{at: down + 20*ms, do: "priority", prio: 100, state: Master, send: true},
			{at: down + 30*ms, do: "priority", prio: 100, state: Master},
			{at: down + 120*ms, do: "tick", state: Master, send: true},
			{at: down + 130*ms, do: "recv", from: peer, prio: 120, state: Backup, why: "with priority 120, above ours (100)"},
		}},
		{"a backup's priority raised past its master's: with preempt it takes over", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 100 * ms, do: "recv", from: peer, prio: 200, state: Backup},
			{at: 150 * ms, do: "priority", prio: 254, state: Backup},
			{at: 200 * ms, do: "recv", from: peer, prio: 200, state: Backup}, // discarded: the timer runs on
			{at: 100*ms + down - 1, do: "tick", state: Backup},
			{at: 100*ms + down, do: "tick", state: Master, send: true, why: "no advert from master 198.18.0.3 (priority 200)"},
		}},
		{"preempt: a lower master is ignored, we take over", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 100 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 200 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
			// as master, a lower master's advert is answered at once,
			// and the VIPs announced again
			{at: down + 10*ms, do: "recv", from: peer, prio: 100, state: Master, send: true, reassert: "below ours (150): another master"},
		}},
		{"no preempt: a lower master stays master", func(c *Config) { c.Preempt = false }, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 100 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 400 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 400*ms + down - 1, do: "tick", state: Backup},
		}},
		{"preempt_delay: no preemption until it has passed", func(c *Config) { c.PreemptDelay = time.Second }, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 300 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 600 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 900 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 900*ms + down - 1, do: "tick", state: Backup},
			{at: 1000 * ms, do: "recv", from: peer, prio: 100, state: Backup}, // discarded now
			{at: 900*ms + down, do: "tick", state: Master, send: true, why: "master-down"},
		}},
		// keepalived (vrrp_state_backup): an advert of a priority not
		// below ours stops the delay, the next lower one starts it
		// again: a master whose priority dips (a track_script's weight,
		// a reload) is not preempted before preempt_delay.
		{"preempt_delay: counts again from the first lower advert after a higher master", func(c *Config) { c.PreemptDelay = time.Second }, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 1500 * ms, do: "recv", from: peer, prio: 200, state: Backup},
			{at: 1800 * ms, do: "recv", from: peer, prio: 200, state: Backup},
			{at: 2000 * ms, do: "recv", from: peer, prio: 100, state: Backup}, // followed: the delay starts
			{at: 1800*ms + down, do: "tick", state: Backup},
			{at: 2300 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 2600 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 2900 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 3000 * ms, do: "recv", from: peer, prio: 100, state: Backup}, // discarded now
			{at: 2900*ms + down, do: "tick", state: Master, send: true, why: "master-down"},
		}},
		{"preempt_delay: a master made backup counts it from the first lower advert", func(c *Config) { c.PreemptDelay = time.Second }, []step{
			{do: "start", state: Backup, why: "start"},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
			{at: 1100 * ms, do: "recv", from: peer, prio: 200, state: Backup, why: "above ours"},
			{at: 1400 * ms, do: "recv", from: peer, prio: 200, state: Backup},
			{at: 1600 * ms, do: "recv", from: peer, prio: 100, state: Backup}, // followed: the delay starts
			{at: 1400*ms + down, do: "tick", state: Backup},
			{at: 1900 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 2200 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 2500 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 2600 * ms, do: "recv", from: peer, prio: 100, state: Backup}, // discarded now
			{at: 2500*ms + down, do: "tick", state: Master, send: true, why: "master-down"},
		}},
		{"preempt held (sync not done): a lower master stays master until released", nil, []step{
			{do: "hold", state: Init},
			{do: "start", state: Backup, why: "start"},
			{at: 100 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 400 * ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 400*ms + down - 1, do: "tick", state: Backup},
			{at: 450 * ms, do: "release", state: Backup},
			{at: 500 * ms, do: "recv", from: peer, prio: 100, state: Backup}, // discarded now
			{at: 400*ms + down, do: "tick", state: Master, send: true, why: "master-down"},
		}},
		{"preempt held: with no master at all, still master after the master-down interval", nil, []step{
			{do: "hold", state: Init},
			{do: "start", state: Backup, why: "start"},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
		}},
		{"a master yields to a higher priority", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
			{at: down + 50*ms, do: "recv", from: peer, prio: 200, state: Backup, why: "priority 200, above ours (150)"},
			{at: down + 50*ms + down - 1, do: "tick", state: Backup},
		}},
		{"equal priority: the higher address wins", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
			{at: down + 10*ms, do: "recv", from: netip.MustParseAddr("198.18.0.1"), prio: 150, state: Master, send: true, reassert: "our priority (150) and a lower address: another master"},
			{at: down + 20*ms, do: "recv", from: peer, prio: 150, state: Backup, why: "higher address"},
		}},
		{"priority 0: take over after the skew time", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 100 * ms, do: "recv", from: peer, prio: 200, state: Backup},
			{at: 150 * ms, do: "recv", from: peer, prio: 0, state: Backup},
			{at: 150*ms + 106*100*ms/256 - 1, do: "tick", state: Backup},
			{at: 150*ms + 106*100*ms/256, do: "tick", state: Master, send: true, why: "master-down"},
			// another master resigning: answer at once
			{at: 300 * ms, do: "recv", from: peer, prio: 0, state: Master, send: true},
		}},
		{"wrong TTL, VRID, version, checksum: ignored", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 300 * ms, do: "recv", from: peer, prio: 200, pkt: func(b []byte) []byte { b[8] = 64; return b }, state: Backup},
			{at: 301 * ms, do: "recv", from: peer, prio: 200, vrid: 52, state: Backup},
			{at: 302 * ms, do: "recv", from: peer, prio: 200, pkt: func(b []byte) []byte { b[20] = 0x21; return b }, state: Backup},
			{at: 303 * ms, do: "recv", from: peer, prio: 200, pkt: func(b []byte) []byte { b[27]++; return b }, state: Backup},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
		}},
		{"link down: a master leaves for FAULT, silent; link up: backup, then preempts", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
			{at: down + 50*ms, do: "down", state: Fault, why: "eth0: link down"},
			{at: down + 100*ms, do: "tick", state: Fault}, // no advert
			{at: down + 150*ms, do: "recv", from: peer, prio: 100, state: Fault},
			{at: 2 * time.Second, do: "up", state: Backup, why: "eth0: link up: waiting for a master's advert for the master-down interval (341.40625ms)"},
			// the master elected meanwhile (lower, preempted after the
			// master-down interval)
			{at: 2*time.Second + 100*ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 2*time.Second + down - 1, do: "tick", state: Backup},
			{at: 2*time.Second + down, do: "tick", state: Master, send: true, why: "master-down"},
		}},
		{"link up: preempt_delay counts again", func(c *Config) { c.PreemptDelay = time.Second }, []step{
			{do: "start", state: Backup, why: "start"},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
			{at: 2 * time.Second, do: "down", state: Fault, why: "link down"},
			{at: 3 * time.Second, do: "up", state: Backup, why: "link up"},
			{at: 3*time.Second + 300*ms, do: "recv", from: peer, prio: 100, state: Backup},
			{at: 3*time.Second + 300*ms + down - 1, do: "tick", state: Backup},
		}},
		{"link down before start: FAULT at start; a higher master heard after the link is back", nil, []step{
			{do: "down", state: Init},
			{do: "start", state: Fault, why: "start: eth0: link down"},
			{at: down, do: "tick", state: Fault},
			{at: time.Second, do: "down", state: Fault},
			{at: 2 * time.Second, do: "up", state: Backup, why: "link up"},
			{at: 2*time.Second + 10*ms, do: "recv", from: peer, prio: 200, state: Backup},
			{at: 2*time.Second + 10*ms + down - 1, do: "tick", state: Backup},
			{at: 2*time.Second + 20*ms, do: "stop", state: Init, why: "stop"},
			{at: 3 * time.Second, do: "up", state: Init},
		}},
		{"our own advert looped back is no event", nil, []step{
			{do: "start", state: Backup, why: "start"},
			{at: 300 * ms, do: "recv", from: self, prio: 150, state: Backup},
			{at: down, do: "tick", state: Master, send: true, why: "master-down"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			m, err := NewMachine(c)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				var out Output
				switch s.do {
				case "start":
					out = m.Start(now)
				case "stop":
					out = m.Stop(now)
				case "tick":
					out = m.Tick(now)
				case "down":
					out = m.LinkDown(now, "eth0: link down")
				case "up":
					out = m.LinkUp(now, "eth0: link up")
				case "hold", "release":
					m.SetPreemptHold(s.do == "hold")
				case "priority":
					var err error
					if out, err = m.SetPriority(now, s.prio); err != nil {
						t.Fatal(err)
					}
				case "recv":
					ivl, vrid := s.ivl, s.vrid
					if ivl == 0 {
						ivl = 100 * ms
					}
					if vrid == 0 {
						vrid = 51
					}
					b := advertFrom(t, s.from, vrid, s.prio, ivl)
					if s.pkt != nil {
						b = s.pkt(b)
					}
					out = m.Receive(now, b)
				}
				if m.State() != s.state || out.Send != s.send || out.Changed != (s.why != "") ||
					(out.Reassert != "") != (s.reassert != "") || !strings.Contains(out.Reassert, s.reassert) ||
					s.why != "" && (!strings.Contains(out.Reason, s.why) || out.To != s.state) {
					t.Fatalf("step %d (%s at %v): state %v, output %+v; want %v send=%t why %q", i, s.do, s.at, m.State(), out, s.state, s.send, s.why)
				}
			}
			if strings.HasPrefix(tc.name, "wrong TTL") {
				st := m.Stats()
				if st.Ignored["ttl"] != 1 || st.Ignored["vrid"] != 1 || st.Ignored["version"] != 1 || st.Ignored["checksum"] != 1 || st.Received != 0 {
					t.Errorf("stats %+v", st)
				}
			}
		})
	}
}

func TestMachineStopAdvertHasPriorityZero(t *testing.T) {
	m, err := NewMachine(Config{VRID: 1, Priority: 100, Interval: time.Second, Self: self})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(t0)
	m.Tick(t0.Add(time.Hour))
	if m.State() != Master || m.Advert().Priority != 100 {
		t.Fatalf("state %v advert %+v", m.State(), m.Advert())
	}
	if out := m.Stop(t0.Add(2 * time.Hour)); !out.Send || m.Advert().Priority != 0 {
		t.Fatalf("stop: %+v advert %+v", out, m.Advert())
	}
	st := m.Stats()
	if st.Transitions != 3 || st.Sent != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestNewMachineRefuses(t *testing.T) {
	good := Config{VRID: 1, Priority: 100, Interval: time.Second, Self: self}
	for name, change := range map[string]func(*Config){
		"vrid 0":       func(c *Config) { c.VRID = 0 },
		"priority 255": func(c *Config) { c.Priority = 255 },
		"priority 0":   func(c *Config) { c.Priority = 0 },
		"interval 5ms": func(c *Config) { c.Interval = 5 * time.Millisecond },
		"self IPv6":    func(c *Config) { c.Self = netip.MustParseAddr("2001:2::2") },
		"IPv6 address": func(c *Config) { c.Addrs = []netip.Addr{netip.MustParseAddr("2001:2::100")} },
		"no self":      func(c *Config) { c.Self = netip.Addr{} },
		"IPv6 self, IPv4 address": func(c *Config) {
			c.Self, c.Addrs = netip.MustParseAddr("fe80::2"), []netip.Addr{netip.MustParseAddr("198.18.0.100")}
		},
		"negative wait": func(c *Config) { c.PreemptDelay = -1 },
	} {
		c := good
		change(&c)
		if _, err := NewMachine(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMachineIPv6: an IPv6 virtual router (link-local self) elects on IPv6
// adverts and ignores IPv4 ones (another protocol, even with the same
// VRID), adverts with a hop limit other than 255, and checksums over
// another pseudo-header; equal priorities go to the higher link-local
// address.
func TestMachineIPv6(t *testing.T) {
	ms := time.Millisecond
	m, err := NewMachine(Config{VRID: 51, Priority: 150, Interval: 100 * ms, Preempt: true, Self: self6, Addrs: []netip.Addr{vip6}})
	if err != nil {
		t.Fatal(err)
	}
	adv6 := func(src netip.Addr, prio uint8) []byte {
		b, err := (&Advert{VRID: 51, Priority: prio, Interval: 100 * ms, Addrs: []netip.Addr{vip6}}).AppendIPv6(nil, src)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m.Start(t0)
	down := m.MasterDownInterval()
	// Ignored: an IPv4 advert of the same VRID, hop limit 64, a bad checksum.
	m.Receive(t0.Add(10*ms), advertFrom(t, peer, 51, 200, 100*ms))
	routed := adv6(peer6, 200)
	routed[7] = 64
	m.Receive(t0.Add(20*ms), routed)
	bad := adv6(peer6, 200)
	bad[len(bad)-1]++
	m.Receive(t0.Add(30*ms), bad)
	if st := m.Stats(); st.Received != 0 || st.Ignored["ttl"] != 1 || st.Ignored["malformed"] != 1 || st.Ignored["checksum"] != 1 {
		t.Fatalf("stats %+v", st)
	}
	out := m.Tick(t0.Add(down))
	if m.State() != Master || !out.Send || !out.Changed {
		t.Fatalf("after the master-down interval: %v %+v", m.State(), out)
	}
	if a := m.Advert(); len(a.Addrs) != 1 || a.Addrs[0] != vip6 {
		t.Fatalf("advert %+v", a)
	}
	// Equal priority from a lower link-local address: we stay master.
	m.Receive(t0.Add(down+10*ms), adv6(netip.MustParseAddr("fe80::1"), 150))
	if m.State() != Master {
		t.Fatalf("yielded to a lower address")
	}
	// Equal priority from a higher one: we yield.
	out = m.Receive(t0.Add(down+20*ms), adv6(peer6, 150))
	if m.State() != Backup || !strings.Contains(out.Reason, "higher address") {
		t.Fatalf("%v %+v", m.State(), out)
	}
	if st := m.Stats(); st.Master != peer6 || st.MasterPriority != 150 {
		t.Fatalf("stats %+v", st)
	}
	if err := m.SetAddrs([]netip.Addr{vip}, false); err == nil {
		t.Error("SetAddrs took an IPv4 VIP")
	}
}

func TestMachineSetPriorityRefuses(t *testing.T) {
	m, err := NewMachine(Config{VRID: 1, Priority: 100, Interval: time.Second, Self: self})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint8{0, 255} {
		if _, err := m.SetPriority(t0, p); !errors.Is(err, ErrBadConfig) {
			t.Errorf("priority %d: %v, want ErrBadConfig", p, err)
		}
	}
	if m.Stats().Priority != 100 {
		t.Fatalf("a refused priority changed it: %d", m.Stats().Priority)
	}
}
