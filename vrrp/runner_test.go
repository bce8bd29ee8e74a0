package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// hub is an in-memory LAN segment: what one conn sends, the others read.
type hub struct {
	mu    sync.Mutex
	conns []*memConn
}

type memConn struct {
	h      *hub
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

func (h *hub) conn() *memConn {
	c := &memConn{h: h, in: make(chan []byte, 64), closed: make(chan struct{})}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return c
}

func (c *memConn) Send(pkt []byte) error {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	for _, o := range c.h.conns {
		if o != c {
			select {
			case o.in <- append([]byte(nil), pkt...):
			default:
			}
		}
	}
	return nil
}

func (c *memConn) Recv(b []byte) (int, error) {
	select {
	case p := <-c.in:
		return copy(b, p), nil
	case <-c.closed:
		return 0, errors.New("closed")
	}
}

func (c *memConn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

// TestRunnersElect: two runners on one segment elect the higher priority;
// when it stops (priority 0), the other takes over within the skew time
// plus scheduling, far below the master-down interval. IPv4 and IPv6
// virtual routers alike.
func TestRunnersElect(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { testRunnersElect(t, self, peer, vip) })
	t.Run("ipv6", func(t *testing.T) { testRunnersElect(t, self6, peer6, vip6) })
}

func testRunnersElect(t *testing.T, self, peer, vip netip.Addr) {
	h := &hub{}
	type director struct {
		r      *Runner
		cancel context.CancelFunc
		done   chan struct{}
		states chan Transition
	}
	start := func(self netip.Addr, prio uint8) *director {
		m, err := NewMachine(Config{VRID: 51, Priority: prio, Interval: 20 * time.Millisecond, Preempt: true, Self: self, Addrs: []netip.Addr{vip}})
		if err != nil {
			t.Fatal(err)
		}
		d := &director{done: make(chan struct{}), states: make(chan Transition, 16)}
		d.r, err = NewRunner(RunnerConfig{Machine: m, Conn: h.conn(), Self: self, OnChange: func(tr Transition) { d.states <- tr }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		d.cancel = cancel
		go func() { defer close(d.done); d.r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-d.done })
		return d
	}
	wait := func(d *director, want State, within time.Duration) time.Duration {
		t.Helper()
		t0 := time.Now()
		deadline := time.After(within)
		for {
			select {
			case tr := <-d.states:
				if tr.To == want {
					return time.Since(t0)
				}
			case <-deadline:
				t.Fatalf("not %v within %v: %+v", want, within, d.r.Stats())
			}
		}
	}
	a := start(peer, 200)
	wait(a, Master, time.Second)
	b := start(self, 100)
	wait(b, Backup, time.Second)
	time.Sleep(200 * time.Millisecond)
	if st := b.r.Stats(); st.State != Backup || st.Master != peer || st.MasterPriority != 200 || st.Received == 0 {
		t.Fatalf("b: %+v", st)
	}
	a.cancel()
	<-a.done
	took := wait(b, Master, time.Second)
	t.Logf("takeover after the master's priority 0: %v", took)
	// The master comes back and preempts.
	a2 := start(peer, 200)
	wait(a2, Master, time.Second)
	wait(b, Backup, time.Second)
	// a2's link goes down: it falls silent and b takes over. When the
	// link is back, a2 waits as at start, then preempts.
	a2.r.SetLink(false, "link down")
	wait(a2, Fault, time.Second)
	wait(b, Master, time.Second)
	a2.r.SetLink(true, "link up")
	wait(a2, Backup, time.Second)
	wait(a2, Master, time.Second)
	wait(b, Backup, time.Second)
}

// TestRunnerLinkUpAlone: a runner alone whose link comes back becomes
// master after the master-down interval, with no advert to wake its loop
// (SetLink does).
func TestRunnerLinkUpAlone(t *testing.T) {
	m, err := NewMachine(Config{VRID: 51, Priority: 100, Interval: 20 * time.Millisecond, Self: self, Addrs: []netip.Addr{vip}})
	if err != nil {
		t.Fatal(err)
	}
	states := make(chan State, 16)
	r, err := NewRunner(RunnerConfig{Machine: m, Conn: (&hub{}).conn(), Self: self, OnChange: func(tr Transition) { states <- tr.To }})
	if err != nil {
		t.Fatal(err)
	}
	r.SetLink(false, "link down") // before Run: it starts in FAULT
	runInBackground(t, r)
	want := func(s State) {
		t.Helper()
		select {
		case got := <-states:
			if got != s {
				t.Fatalf("state %v, want %v", got, s)
			}
		case <-time.After(time.Second):
			t.Fatalf("not %v within 1s: %+v", s, r.Stats())
		}
	}
	want(Fault)
	time.Sleep(100 * time.Millisecond) // the loop waits with no timer
	r.SetLink(true, "link up")
	want(Backup)
	want(Master)
}

// TestRunnerHearsLargeIPv6Adverts: an IPv6 advert of many addresses is
// over 1500 bytes (91 or more: 40+8+16n), as config allows 255 VIPs with
// ha:. The runner reads adverts into a buffer for the largest one: cut at
// 1500 bytes, every one of the master's was refused as malformed and the
// backup took over too (two masters).
func TestRunnerHearsLargeIPv6Adverts(t *testing.T) {
	var addrs []netip.Addr
	for i := range MaxAddrs {
		a := vip6.As16()
		a[14], a[15] = byte(i>>8), byte(i+1)
		addrs = append(addrs, netip.AddrFrom16(a))
	}
	h := &hub{}
	master := h.conn()
	m, err := NewMachine(Config{VRID: 51, Priority: 100, Interval: time.Second, Self: self6, Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(RunnerConfig{Machine: m, Conn: h.conn(), Self: self6})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, r)
	advert, err := (&Advert{VRID: 51, Priority: 200, Interval: time.Second, Addrs: addrs}).AppendIPv6(nil, peer6)
	if err != nil {
		t.Fatal(err)
	}
	if len(advert) <= 1500 {
		t.Fatalf("an advert of %d addresses is %d bytes: not over 1500", len(addrs), len(advert))
	}
	deadline := time.Now().Add(10 * time.Second) // a hang guard
	for r.Stats().Received == 0 && time.Now().Before(deadline) {
		if err := master.Send(advert); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := r.Stats(); s.Received == 0 || s.Master != peer6 {
		t.Fatalf("the backup heard no advert of %d bytes (ignored %v)", len(advert), s.Ignored)
	}
}

// countConn keeps the priorities of the adverts sent through it; it
// reads nothing (the test steps the runner itself).
type countConn struct{ sent []uint8 }

func (c *countConn) Recv([]byte) (int, error) { return 0, errors.New("countConn reads nothing") }
func (c *countConn) Close() error             { return nil }

func (c *countConn) Send(pkt []byte) error {
	p, err := ParseIPv4(pkt, nil)
	if err != nil {
		return err
	}
	c.sent = append(c.sent, p.Priority)
	return nil
}

// TestRunnerAdvertBeforeCallbacks: the advert that goes with an event is
// sent before OnChange and OnReassert run (RFC 5798 6.4.2: a new master
// sends its advert, then its gratuitous ARP; 6.4.3: a stopping master its
// priority-0 advert, then Initialize). The callbacks ran first, and the
// director's burst of 5 gratuitous ARP per VIP in them held the advert
// back.
func TestRunnerAdvertBeforeCallbacks(t *testing.T) {
	lower, err := (&Advert{VRID: 51, Priority: 50, Interval: time.Second, Addrs: []netip.Addr{vip}}).AppendIPv4(nil, peer, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		master bool // master before the event (else BACKUP, its master-down interval over)
		event  func(m *Machine) func(time.Time) Output
		want   string // the callback and the adverts sent when it ran
	}{
		{"becoming master", false, func(m *Machine) func(time.Time) Output { return m.Tick }, "change BACKUP->MASTER after [100]"},
		{"another master of lower priority", true, func(m *Machine) func(time.Time) Output {
			return func(now time.Time) Output { return m.Receive(now, lower) }
		}, "reassert after [100 100]"},
		{"stopping as master", true, func(m *Machine) func(time.Time) Output { return m.Stop }, "change MASTER->INIT after [100 0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMachine(Config{VRID: 51, Priority: 100, Interval: time.Second, Self: self, Addrs: []netip.Addr{vip}})
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			conn := &countConn{}
			var got []string
			r, err := NewRunner(RunnerConfig{Machine: m, Conn: conn, Self: self, Clock: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler),
				OnChange: func(tr Transition) {
					got = append(got, fmt.Sprintf("change %v->%v after %v", tr.From, tr.To, conn.sent))
				},
				OnReassert: func(string) { got = append(got, fmt.Sprintf("reassert after %v", conn.sent)) }})
			if err != nil {
				t.Fatal(err)
			}
			r.step(m.Start)
			now = now.Add(m.MasterDownInterval())
			if tc.master {
				r.step(m.Tick)
			}
			got = nil
			r.step(tc.event(m))
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("callbacks %q, want [%q]", got, tc.want)
			}
		})
	}
}

// resumedConn is the socket of a process that was paused (SIGSTOP, a VM
// stalled) while the master kept sending: its adverts wait in the
// socket, and the reader goroutine has not run yet when the master-down
// timer, long due, fires. The reader runs once something looks at the
// socket (Pending), as it would a moment later.
type resumedConn struct {
	mu     sync.Mutex
	queue  [][]byte
	run    chan struct{} // closed: the reader runs
	once   sync.Once
	closed chan struct{}
}

func (c *resumedConn) Pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 {
		c.once.Do(func() { close(c.run) })
	}
	return len(c.queue) > 0
}

func (c *resumedConn) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

func (c *resumedConn) Recv(b []byte) (int, error) {
	select {
	case <-c.run:
	case <-c.closed:
		return 0, errors.New("closed")
	}
	c.mu.Lock()
	if len(c.queue) > 0 {
		p := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()
		return copy(b, p), nil
	}
	c.mu.Unlock()
	<-c.closed
	return 0, errors.New("closed")
}

func (c *resumedConn) Send([]byte) error { return nil }
func (c *resumedConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}

// TestRunnerReadsBeforeTakeover: a backup whose master-down timer fires
// while the master's advert waits in its socket reads the advert and stays
// BACKUP, as keepalived (it handles a readable socket before its timers).
// Taking over on the stale timer made a paused backup flap on resume:
// MASTER, its advert and gratuitous ARP, then BACKUP at the next advert.
func TestRunnerReadsBeforeTakeover(t *testing.T) {
	m, err := NewMachine(Config{VRID: 51, Priority: 100, Interval: 20 * time.Millisecond, Preempt: true, Self: self, Addrs: []netip.Addr{vip}})
	if err != nil {
		t.Fatal(err)
	}
	c := &resumedConn{queue: [][]byte{advertFrom(t, peer, 51, 200, 20*time.Millisecond)}, run: make(chan struct{}), closed: make(chan struct{})}
	var mu sync.Mutex
	var tookOver []string
	r, err := NewRunner(RunnerConfig{Machine: m, Conn: c, Self: self, Logger: slog.New(slog.DiscardHandler),
		OnChange: func(tr Transition) {
			if tr.To == Master {
				mu.Lock()
				tookOver = append(tookOver, fmt.Sprintf("MASTER with %d advert(s) from the master waiting: %s", c.waiting(), tr.Reason))
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, r)
	// The master-down interval is 60 ms + skew: the timer fires within it.
	deadline := time.Now().Add(time.Second)
	for r.Stats().Received == 0 && time.Now().Before(deadline) {
		mu.Lock()
		n := len(tookOver)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tookOver) > 0 {
		t.Fatalf("took over on a stale timer: %v", tookOver)
	}
	if st := r.Stats(); st.Received != 1 || st.State != Backup || st.Master != peer {
		t.Fatalf("the master's advert was not read first: %+v", st)
	}
}

// runInBackground runs r until the test ends, and waits for it to stop.
func runInBackground(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
