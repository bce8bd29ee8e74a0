package director

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
)

// synPort is a Port whose kernel side forwards SYNs (a fake of the
// AF_XDP port's XDP program, or an AF_PACKET worker's socket filter and
// tc program): it records what the director sets and
// reports the count the test sets.
type synPort struct {
	link.Port
	sent   atomic.Uint64
	mu     sync.Mutex
	on     bool
	tables []link.SYNTable
	sets   int
	fail   error // what SetStatelessSYNs returns, if set
}

func (p *synPort) SetStatelessSYNs(on bool, tables []link.SYNTable) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return 0, p.fail
	}
	p.on, p.tables, p.sets = on, tables, p.sets+1
	return 0, nil
}

func (p *synPort) StatelessSYNsSent() (uint64, error) { return p.sent.Load(), nil }

func (p *synPort) state() (bool, []link.SYNTable) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on, p.tables
}

// TestStatelessSYNsInTheKernel: once the table is under pressure the
// director turns the port's SYN forwarding on with a table that sends
// every bucket to the one real server; the SYNs the kernel reports are
// counted as syn-stateless and keep the adoption window open, so a
// client's ACK without entry is adopted; and the forwarding goes off
// when the pressure ends.
func TestStatelessSYNsInTheKernel(t *testing.T) {
	cfg := rs2Config() // max_conns 64: pressure from 32 entries
	dirPort, wire := link.Pipe()
	port := &synPort{Port: dirPort}
	now := time.Unix(1_800_000_000, 0)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	d, err := New(cfg, port, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond, KernelSYNs: true,
		Clock: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	l2 := framegen.L2{Src: routerMAC, Dst: d.port.HardwareAddr()}
	fw := d.workers[0].fw
	tick := func() { clock.Add(int64(100 * time.Millisecond)) }
	// The snapshot (drlb ctl, /metrics) says whether the forwarding is
	// held, with -kernel-syns alone (no kernel flows) too.
	synsState := func(want string) {
		t.Helper()
		if got := d.Snapshot(false).KernelSYNsState; got != want {
			t.Fatalf("snapshot: kernel SYNs %q, want %q", got, want)
		}
	}
	synsState(control.KernelSYNsOn)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			// A frame wakes the worker's loop, which checks the port.
			tick()
			send(t, wire, framegen.TCP(l2, netip.MustParseAddrPort("198.18.1.250:1"), netip.AddrPortFrom(vip, 80), "A", 1, 1, nil))
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := range 40 { // SYN_RECV entries: 40 of 64
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), 40000)
		send(t, wire, framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil))
	}
	waitFor("the kernel forwarding on", func() bool { on, _ := port.state(); return on })
	_, tables := port.state()
	if len(tables) != 1 || tables[0].VIP != vip || tables[0].Port != 80 || len(tables[0].MACs) == 0 {
		t.Fatalf("tables %+v, want one for %v:80", tables, vip)
	}
	for i, m := range tables[0].MACs {
		if m != [6]byte(rs2MAC) {
			t.Fatalf("bucket %d: MAC % x, want rs2's % x", i, m, rs2MAC)
		}
	}
	before := fw.Count(forwarder.ReasonSynStateless)
	port.sent.Store(1000)
	waitFor("the kernel's SYNs counted", func() bool { return fw.Count(forwarder.ReasonSynStateless) >= before+1000 })
	// The snapshot (drlb ctl, /metrics) tells them from drlb's own.
	if s := d.Snapshot(false); s.KernelSYNs < 1000 {
		t.Fatalf("snapshot: %d kernel SYNs, want at least the port's 1000", s.KernelSYNs)
	}
	// An ACK for a SYN only the kernel saw is adopted.
	adopted := fw.Count(forwarder.ReasonPressureAdopted)
	c := netip.MustParseAddrPort("198.18.3.1:50000")
	send(t, wire, framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 1, 1, nil))
	waitFor("the ACK adopted", func() bool { return fw.Count(forwarder.ReasonPressureAdopted) > adopted })
	// The SYN_RECV entries expire; with no more kernel SYNs the shadow
	// empties and the pressure, and the forwarding, end.
	clock.Add(int64(2 * time.Minute))
	waitFor("the kernel forwarding off", func() bool { on, _ := port.state(); return !on })
	// Under pressure again, the XDP program detached from outside
	// (xdpwatch_linux.go): nothing forwards SYNs in the kernel, so the
	// forwarding goes off though the pressure lasts.
	for i := range 40 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 4, byte(i)}), 40000)
		send(t, wire, framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil))
	}
	waitFor("the kernel forwarding on again", func() bool { on, _ := port.state(); return on })
	d.xdpDetached.Store(true)
	waitFor("the kernel forwarding off once detached", func() bool { on, _ := port.state(); return !on })
	synsState(control.KernelSYNsHeld)
	if !fw.StatelessSYNsOn() {
		t.Error("the pressure ended with the forwarding: the test did not show the detach turned it off")
	}
	// With AF_PACKET the tc program that sends the SYNs the socket
	// filters leave to it may lose its place at tc ingress
	// (kflowhold_linux.go): off while held, on again once resumed.
	d.xdpDetached.Store(false)
	waitFor("the kernel forwarding on after the attach", func() bool { on, _ := port.state(); return on })
	synsState(control.KernelSYNsOn)
	d.holdKernelFlows(true)
	waitFor("the kernel forwarding off while held", func() bool { on, _ := port.state(); return !on })
	synsState(control.KernelSYNsHeld)
	d.holdKernelFlows(false)
	waitFor("the kernel forwarding on once resumed", func() bool { on, _ := port.state(); return on })
	synsState(control.KernelSYNsOn)
}

// TestStatelessSYNsOffByDefault: without Options.KernelSYNs the port's
// kernel forwarding is never touched, pressure or not.
func TestStatelessSYNsOffByDefault(t *testing.T) {
	dirPort, wire := link.Pipe()
	port := &synPort{Port: dirPort}
	d, err := New(rs2Config(), port, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	if got := d.Snapshot(false).KernelSYNsState; got != "" {
		t.Errorf("snapshot: kernel SYNs %q without KernelSYNs, want \"\"", got)
	}
	l2 := framegen.L2{Src: routerMAC, Dst: d.port.HardwareAddr()}
	for i := range 60 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), 40000)
		send(t, wire, framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil))
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.workers[0].fw.Count(forwarder.ReasonSynStateless) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no pressure: the test did not exercise it")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	port.mu.Lock()
	defer port.mu.Unlock()
	if port.sets != 0 {
		t.Fatalf("SetStatelessSYNs called %d times without KernelSYNs", port.sets)
	}
}

// TestStatelessSYNsFailed: a write of the kernel's SYN forwarding that
// fails turns it off for good, and ctl says so ("failed", not "on").
func TestStatelessSYNsFailed(t *testing.T) {
	dirPort, wire := link.Pipe()
	port := &synPort{Port: dirPort, fail: errors.New("map write: no memory")}
	d, err := New(rs2Config(), port, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond, KernelSYNs: true})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	if st := d.Snapshot(false).KernelSYNsState; st != control.KernelSYNsOn {
		t.Fatalf("before any write: kernel SYNs %q, want %q", st, control.KernelSYNsOn)
	}
	l2 := framegen.L2{Src: routerMAC, Dst: d.port.HardwareAddr()}
	for i := range 40 { // pressure: the first write, which fails
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), 40000)
		send(t, wire, framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil))
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.Snapshot(false).KernelSYNsState != control.KernelSYNsFailed {
		if time.Now().After(deadline) {
			t.Fatalf("kernel SYNs %q after a failed write, want %q", d.Snapshot(false).KernelSYNsState, control.KernelSYNsFailed)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
