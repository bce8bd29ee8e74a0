package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/link"
	"golang.org/x/net/bpf"
)

// errOptmem is what setsockopt SO_ATTACH_FILTER says when a longer filter
// does not fit in optmem_max.
var errOptmem = errors.New("setsockopt SO_ATTACH_FILTER: cannot allocate memory")

// kernelSidePort is a pipe end with what an AF_XDP port has in the kernel:
// a socket filter (link.FilterSetter) and an XDP VIP map (link.VIPSetter),
// recorded. refuseFilter and refuseVIPs, if set, may refuse a step.
type kernelSidePort struct {
	link.Port
	mu           sync.Mutex
	filter       []bpf.RawInstruction
	vips         []netip.Addr
	refuseFilter func([]bpf.RawInstruction) error
	refuseVIPs   func([]netip.Addr) error
}

func (p *kernelSidePort) SetFilter(f []bpf.RawInstruction) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuseFilter != nil {
		if err := p.refuseFilter(f); err != nil {
			return err
		}
	}
	p.filter = slices.Clone(f)
	return nil
}

func (p *kernelSidePort) SetVIPs(vips []netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuseVIPs != nil {
		if err := p.refuseVIPs(vips); err != nil {
			return err
		}
	}
	p.vips = slices.Clone(vips)
	return nil
}

// holds reports whether p's filter and VIP map admit exactly vips.
func (p *kernelSidePort) holds(t *testing.T, vips ...netip.Addr) bool {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Equal(p.filter, filterOf(t, vips...)) && sameAddrs(p.vips, vips)
}

func (p *kernelSidePort) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "XDP VIPs " + addrsString(p.vips) + ", a filter of " + strconv.Itoa(len(p.filter)) + " instructions"
}

func filterOf(t *testing.T, vips ...netip.Addr) []bpf.RawInstruction {
	t.Helper()
	f, err := link.VIPFilter(vips)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func sameAddrs(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

func addrsString(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

// fakeFollower stands for Run's blackhole routes and tc drop (kernelVIPs,
// which need netlink in a network namespace): held are the VIPs it has
// routes for. widenErr refuses a widen, as a kernel refusing a new VIP's
// blackhole route does; widened and narrowed, if set, see each step.
type fakeFollower struct {
	held     []netip.Addr
	widenErr error
	widened  func(added []netip.Addr)
	narrowed func(removed []netip.Addr)
}

func (f *fakeFollower) widen(added []netip.Addr) (func() error, error) {
	if f.widened != nil {
		f.widened(added)
	}
	if f.widenErr != nil {
		return nil, f.widenErr
	}
	f.held = append(f.held, added...)
	return func() error {
		f.held = slices.DeleteFunc(f.held, func(a netip.Addr) bool { return slices.Contains(added, a) })
		return nil
	}, nil
}

func (f *fakeFollower) narrow(removed []netip.Addr) {
	if f.narrowed != nil {
		f.narrowed(removed)
	}
	f.held = slices.DeleteFunc(f.held, func(a netip.Addr) bool { return slices.Contains(removed, a) })
}

// kernelSideDirector is a Director for cfg whose workers read ports (each
// on a pipe), which hold cfg's VIPs as Run opens them, with follower for
// Run's kernel state; its log goes to the returned buffer.
func kernelSideDirector(t *testing.T, cfg *config.Config, follower *fakeFollower, ports ...*kernelSidePort) (*Director, *testutil.SyncBuffer) {
	t.Helper()
	var lp []link.Port
	for _, p := range ports {
		end, wire := link.Pipe()
		t.Cleanup(func() { wire.Close(); end.Close() })
		p.Port = end
		p.filter, p.vips = filterOf(t, cfg.VIPs()...), cfg.VIPs()
		lp = append(lp, p)
	}
	logs := &testutil.SyncBuffer{}
	d, err := New(cfg, lp[0], Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), ExtraPorts: lp[1:]})
	if err != nil {
		t.Fatal(err)
	}
	if follower != nil {
		follower.held = cfg.VIPs()
		d.vipFollow = follower
	}
	return d, logs
}

// answersARP reports whether d's responder answers a who-has for addr.
func answersARP(d *Director, addr netip.Addr) bool {
	who := framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, netip.MustParseAddr("198.18.0.1"), addr)
	_, answers := d.responder.Handle(who, make([]byte, arp.MaxFrameLen))
	return answers
}

// unchanged fails t unless d still runs want: its config, the forwarder's
// services, ARP answered for want's VIPs only.
func unchanged(t *testing.T, d *Director, want *config.Config, added ...netip.Addr) {
	t.Helper()
	if got := d.Config().VIPs(); !slices.Equal(got, want.VIPs()) {
		t.Errorf("running VIPs %v after a refused change, want %v", got, want.VIPs())
	}
	if n := len(d.fw.Stats()); n != len(want.Services) {
		t.Errorf("the forwarder serves %d services after a refused change, want %d", n, len(want.Services))
	}
	for _, a := range added {
		if answersARP(d, a) {
			t.Errorf("ARP answered for %v after the change adding it was refused: its frames never reach drlb", a)
		}
	}
}

// TestApplyRefusedBySocketFilter: a reload adding a VIP that one worker's
// socket filter refuses (optmem_max) is refused whole, naming the worker
// and the step, and every worker keeps the old filter and XDP map. It
// used to be swapped in first and the refusal only logged: Apply said
// applied, ARP was answered for the VIP, and its frames never reached
// drlb (or reached one worker and not the other).
func TestApplyRefusedBySocketFilter(t *testing.T) {
	cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
	old := filterOf(t, vip)
	ok := &kernelSidePort{}
	refusing := &kernelSidePort{refuseFilter: func(f []bpf.RawInstruction) error {
		if !slices.Equal(f, old) {
			return errOptmem
		}
		return nil
	}}
	follower := &fakeFollower{widened: func([]netip.Addr) { t.Error("blackhole routes widened after a socket filter refused the change") }}
	d, _ := kernelSideDirector(t, cfg, follower, ok, refusing)
	err := d.Apply(configOf(service(vip, 80, "rr", resolvedReals()...), service(vip2, 80, "rr", resolvedReals()...)))
	if err == nil {
		t.Fatal("Apply succeeded with worker 1's socket filter refusing the new VIP")
	}
	if msg := err.Error(); !errors.Is(err, errOptmem) || !strings.Contains(msg, "worker 1's socket filter") || !strings.Contains(msg, vip2.String()) {
		t.Errorf("Apply: %v; want the step (worker 1's socket filter), the VIP and the kernel's error", err)
	}
	unchanged(t, d, cfg, vip2)
	for i, p := range []*kernelSidePort{ok, refusing} {
		if !p.holds(t, vip) {
			t.Errorf("worker %d holds %v after the refusal, want the old VIP set %v alone", i, p, vip)
		}
	}
	if !slices.Equal(follower.held, []netip.Addr{vip}) {
		t.Errorf("blackhole routes for %v, want %v", follower.held, vip)
	}
}

// TestApplyRefusedByBlackholeRoute: a reload adding a VIP whose blackhole
// route the kernel refuses (IP forwarding on: start-up refuses the same)
// is refused whole, and the sockets' filters and XDP maps, widened for the
// new VIP before the routes, are put back. It used to be applied with the
// route missing, and a forwarding kernel routed duplicates of the new
// VIP's frames.
func TestApplyRefusedByBlackholeRoute(t *testing.T) {
	cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
	refused := errors.New("director: blackhole route for 198.18.0.101/32: file exists (is there a route for the VIP already? ip route show 198.18.0.101/32)")
	p := &kernelSidePort{}
	follower := &fakeFollower{widenErr: refused}
	d, _ := kernelSideDirector(t, cfg, follower, p)
	follower.widened = func(added []netip.Addr) {
		if !slices.Equal(added, []netip.Addr{vip2}) {
			t.Errorf("widen of %v, want %v", added, vip2)
		}
		if !p.holds(t, vip, vip2) {
			t.Errorf("the blackhole routes come after the ports admit old and new VIPs; the port holds %v", p)
		}
		if got := d.Config().VIPs(); !slices.Equal(got, []netip.Addr{vip}) {
			t.Errorf("blackhole routes widened after the swap (running VIPs %v): the router may learn the VIP first", got)
		}
	}
	err := d.Apply(configOf(service(vip, 80, "rr", resolvedReals()...), service(vip2, 80, "rr", resolvedReals()...)))
	if !errors.Is(err, refused) {
		t.Fatalf("Apply: %v, want the blackhole route's error", err)
	}
	unchanged(t, d, cfg, vip2)
	if !p.holds(t, vip) {
		t.Errorf("the port holds %v after the refusal, want the old VIP set %v alone", p, vip)
	}
}

// TestApplyRefusedByXDPMapUndoesWorkers: the second worker's XDP VIP map
// refusing the new VIP puts the first worker's map and filter back too.
func TestApplyRefusedByXDPMapUndoesWorkers(t *testing.T) {
	cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
	first := &kernelSidePort{}
	second := &kernelSidePort{refuseVIPs: func(vips []netip.Addr) error {
		if slices.Contains(vips, vip2) {
			return errors.New("VIP map: update: cannot allocate memory")
		}
		return nil
	}}
	d, _ := kernelSideDirector(t, cfg, nil, first, second)
	err := d.Apply(configOf(service(vip, 80, "rr", resolvedReals()...), service(vip2, 80, "rr", resolvedReals()...)))
	if err == nil || !strings.Contains(err.Error(), "worker 1's XDP VIP map") {
		t.Fatalf("Apply: %v, want a refusal naming worker 1's XDP VIP map", err)
	}
	unchanged(t, d, cfg, vip2)
	for i, p := range []*kernelSidePort{first, second} {
		if !p.holds(t, vip) {
			t.Errorf("worker %d holds %v after the refusal, want %v alone", i, p, vip)
		}
	}
}

// TestApplyVIPsWidenThenNarrow: a reload that replaces a VIP widens the
// kernel side to both VIPs before the swap (sockets, then blackhole
// routes), and narrows it to the new one after the swap, once ARP answers
// for the new VIP only.
func TestApplyVIPsWidenThenNarrow(t *testing.T) {
	cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
	next := configOf(service(vip2, 80, "rr", resolvedReals()...))
	p := &kernelSidePort{}
	follower := &fakeFollower{}
	d, _ := kernelSideDirector(t, cfg, follower, p)
	var steps []string
	follower.widened = func(added []netip.Addr) {
		steps = append(steps, "widen")
		if !p.holds(t, vip, vip2) || answersARP(d, vip2) || !slices.Equal(d.Config().VIPs(), []netip.Addr{vip}) {
			t.Errorf("at widen: port %v, ARP for %v answered %v, running VIPs %v; want both VIPs admitted before the swap", p, vip2, answersARP(d, vip2), d.Config().VIPs())
		}
	}
	follower.narrowed = func(removed []netip.Addr) {
		steps = append(steps, "narrow")
		if !slices.Equal(removed, []netip.Addr{vip}) {
			t.Errorf("narrow of %v, want %v", removed, vip)
		}
		if !answersARP(d, vip2) || answersARP(d, vip) || !slices.Equal(d.Config().VIPs(), []netip.Addr{vip2}) {
			t.Errorf("at narrow: running VIPs %v; want it after the swap, with ARP answered for %v alone", d.Config().VIPs(), vip2)
		}
	}
	if err := d.Apply(next); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(steps, []string{"widen", "narrow"}) {
		t.Errorf("steps %v, want widen then narrow", steps)
	}
	if !p.holds(t, vip2) {
		t.Errorf("the port holds %v after the change, want %v alone", p, vip2)
	}
	if !slices.Equal(follower.held, []netip.Addr{vip2}) {
		t.Errorf("blackhole routes for %v, want %v", follower.held, vip2)
	}
}

// TestApplyVIPsNarrowRefusedIsLogged: once the swap is made, a socket
// filter that refuses to narrow is logged, not an error: frames of the
// removed VIP that still reach drlb are passed as not-VIP.
func TestApplyVIPsNarrowRefusedIsLogged(t *testing.T) {
	both := configOf(service(vip, 80, "rr", resolvedReals()...), service(vip2, 80, "rr", resolvedReals()...))
	narrow := filterOf(t, vip)
	p := &kernelSidePort{refuseFilter: func(f []bpf.RawInstruction) error {
		if slices.Equal(f, narrow) {
			return errOptmem
		}
		return nil
	}}
	d, logs := kernelSideDirector(t, both, nil, p)
	if err := d.Apply(configOf(service(vip, 80, "rr", resolvedReals()...))); err != nil {
		t.Fatalf("Apply: %v, want the removal applied (a wider filter is harmless)", err)
	}
	if got := d.Config().VIPs(); !slices.Equal(got, []netip.Addr{vip}) {
		t.Errorf("running VIPs %v, want %v", got, vip)
	}
	if out := logs.String(); !strings.Contains(out, "socket filter still admits the removed VIPs") {
		t.Errorf("the filter's refusal is not logged:\n%s", out)
	}
}

// TestReloadReadsUnderApplyLock: SIGHUP (Options.Reload), drlb ctl
// --reload (reloadFunc) and Director.Reload read the file inside Apply's
// critical section, so a read older than another reload's is never
// applied after it; a read's error is returned as is, and nothing
// changes. SIGHUP and drlb ctl --reload (the systemd unit's ExecReload)
// report each end, applied or refused, through Options.Reloaded
// (systemd's READY=1 and STATUS line).
func TestReloadReadsUnderApplyLock(t *testing.T) {
	dirPort, wire := link.Pipe()
	t.Cleanup(func() { dirPort.Close() })
	reload := make(chan func() (*config.Config, error))
	reloaded := make(chan error, 1)
	d, err := New(configOf(service(vip, 80, "rr", resolvedReals()...)), dirPort,
		Options{Logger: slog.New(slog.DiscardHandler), Reload: reload, Reloaded: func(err error) { reloaded <- err },
			AnnounceCount: 1, AnnounceInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	loader := func(t *testing.T, sched string, fail error) func() (*config.Config, error) {
		return func() (*config.Config, error) {
			if d.applyMu.TryLock() {
				d.applyMu.Unlock()
				t.Errorf("the file is read (scheduler %s) while another Apply could run", sched)
			}
			if fail != nil {
				return nil, fail
			}
			return configOf(service(vip, 80, sched, resolvedReals()...)), nil
		}
	}
	viaHUP := func(t *testing.T, load func() (*config.Config, error)) error {
		select {
		case reload <- load:
		case <-time.After(5 * time.Second):
			t.Fatal("the director takes no reload")
		}
		select {
		case err := <-reloaded:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("the reload's end is not reported (systemd's READY=1)")
		}
		return nil
	}
	reported := func(t *testing.T, err error) error {
		t.Helper()
		select {
		case got := <-reloaded:
			if got != err {
				t.Errorf("reported to systemd: %v, want %v", got, err)
			}
		case <-time.After(5 * time.Second):
			t.Error("the reload's end is not reported (systemd's READY=1 and STATUS)")
		}
		return err
	}
	viaCtl := func(t *testing.T, load func() (*config.Config, error)) error {
		return reported(t, reloadFunc(d, load)())
	}
	bad := errors.New("drlb.yaml:10:17: services[0].realservers[1].weight: \"-1\": must be 0..65535")
	for _, tc := range []struct {
		name, sched string
		reload      func(*testing.T, func() (*config.Config, error)) error
	}{
		{"Director.Reload", "wlc", func(_ *testing.T, load func() (*config.Config, error)) error { return d.Reload(load) }},
		{"drlb ctl --reload", "lc", viaCtl},
		{"SIGHUP", "wrr", viaHUP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.reload(t, loader(t, tc.sched, nil)); err != nil {
				t.Fatal(err)
			}
			if got := d.Config().Services[0].Scheduler; got != tc.sched {
				t.Errorf("scheduler %q after the reload, want %q", got, tc.sched)
			}
			if err := tc.reload(t, loader(t, "rr", bad)); err != bad {
				t.Errorf("a file that does not load: %v, want its error as is", err)
			}
			if got := d.Config().Services[0].Scheduler; got != tc.sched {
				t.Errorf("scheduler %q after a refused reload, want %q", got, tc.sched)
			}
		})
	}
}

// manyVIPs is a config of n services on VIPs 10.base.x.y:80.
func manyVIPs(base byte, n int) *config.Config {
	var ss []config.Service
	for i := range n {
		ss = append(ss, service(netip.AddrFrom4([4]byte{10, base, byte(i >> 8), byte(i)}), 80, "rr", resolvedReals()...))
	}
	return configOf(ss...)
}

// refuseOverXDPMap refuses VIPs as an XDP VIP map does (kernelSidePort's
// refuseVIPs).
func refuseOverXDPMap(vips []netip.Addr) error {
	if !fitsXDPMap(vips) {
		return fmt.Errorf("XDP VIPs: more than %d VIPs of one family", link.MaxXDPVIPs)
	}
	return nil
}

// TestApplyVIPsOverMapCapacity: 600 VIPs replaced by 600 others, whose
// union (1200) an XDP VIP map (link.MaxXDPVIPs) cannot hold, is applied:
// the maps change after the swap (the removed VIPs out first), and end
// with exactly the new set. Widening them to the union refused a change
// that fits, and that a restart with the same file would take.
func TestApplyVIPsOverMapCapacity(t *testing.T) {
	many := func(base byte) *config.Config { return manyVIPs(base, 600) }
	p := &kernelSidePort{refuseVIPs: refuseOverXDPMap}
	d, _ := kernelSideDirector(t, many(1), nil, p)
	next := many(2)
	if err := d.Apply(next); err != nil {
		t.Fatalf("Apply(600 VIPs -> 600 others): %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Equal(p.vips, next.VIPs()) {
		t.Errorf("the XDP map holds %d VIPs, want the new 600", len(p.vips))
	}
}

// TestRemovedVIPNoLongerAnnounced: a reload that removes a VIP while its
// gratuitous ARP is still going out (it was added a moment before, or
// defended after a conflict) stops them once Apply returns. Each one
// after that would draw the router's traffic back to a director that no
// longer answers for the VIP, perhaps from the director it moved to.
func TestRemovedVIPNoLongerAnnounced(t *testing.T) {
	r := newRigWith(t, configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC))), func(o *Options) {
		o.AnnounceCount, o.AnnounceInterval = 100000, time.Millisecond
	})
	r.apply(configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC)), service(vip2, 80, "rr", realAt(1, 1, rs1MAC))))
	announces := func(b []byte, v netip.Addr) bool {
		return isAnnouncement(b) && netip.AddrFrom4([4]byte(b[28:32])) == v
	}
	var before int
	readFrames(r.wire, 5*time.Second, func(b []byte) bool {
		if announces(b, vip2) {
			before++
		}
		return before > 0
	})
	if before == 0 {
		t.Fatalf("the VIP added, %s, was never announced", vip2)
	}

	r.apply(configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC))))
	// The answer to this request is sent after Apply returned: what
	// follows it on the wire was sent later still.
	who := framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, netip.MustParseAddr("198.18.0.1"), vip)
	f := link.NewFrames(1)
	f[0].Data = append(f[0].Data[:0], who...)
	if _, err := r.wire.WriteBatch(f); err != nil {
		t.Fatal(err)
	}
	var answered time.Time
	var kept, removed int
	readFrames(r.wire, 5*time.Second, func(b []byte) bool {
		switch {
		case answered.IsZero():
			if len(b) >= 42 && b[12] == 0x08 && b[13] == 0x06 && b[21] == 2 && netip.AddrFrom4([4]byte(b[28:32])) == vip {
				answered = time.Now()
			}
		case announces(b, vip):
			kept++
		case announces(b, vip2):
			removed++
		}
		return !answered.IsZero() && time.Since(answered) > 50*time.Millisecond
	})
	if answered.IsZero() {
		t.Fatalf("no answer to who-has %s", vip)
	}
	if kept == 0 {
		t.Fatal("the VIP kept is no longer announced either: the test shows nothing")
	}
	if removed != 0 {
		t.Fatalf("%d gratuitous ARP for the removed VIP %s after the reload (%d for the VIP kept)", removed, vip2, kept)
	}
}

// readFrames hands what the director sends to fn, frame by frame, until
// fn returns true or limit has passed.
func readFrames(wire link.Port, limit time.Duration, fn func([]byte) bool) {
	frames := link.NewFrames(16)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		n, err := wire.ReadBatch(ctx, frames)
		if err != nil {
			return
		}
		for _, f := range frames[:n] {
			if fn(f.Data) {
				return
			}
		}
	}
}

// TestApplyVIPsOverMapRefused: a VIP set that an XDP VIP map cannot hold
// on its own is refused, naming the count, and nothing changes, as
// OpenXDP refuses it at start. It used to be applied with the maps left
// holding the old set (nothing removed: the maps were not even tried) or
// the old set still (the narrowing refused and only logged): removed VIPs
// kept, new ones missing, and the reload said applied. A set that fits,
// however the change goes, is still applied.
func TestApplyVIPsOverMapRefused(t *testing.T) {
	many, capped := manyVIPs, refuseOverXDPMap
	for _, tc := range []struct {
		name      string
		from, to  *config.Config
		wantError string // "" = applied
	}{
		{"added, none removed", many(1, 1000), many(1, 1100), "1100 IPv4"},
		{"all replaced", many(1, 1000), many(2, 1025), "1025 IPv4"},
		{"fits", many(1, 1000), many(1, 1024), ""},
		{"fits, all replaced", many(1, 1000), many(2, 1024), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &kernelSidePort{refuseVIPs: capped}
			d, _ := kernelSideDirector(t, tc.from, nil, p)
			err := d.Apply(tc.to)
			if tc.wantError == "" {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				if !sameAddrs(p.vips, tc.to.VIPs()) {
					t.Errorf("the XDP map holds %d VIPs, want the new %d", len(p.vips), len(tc.to.VIPs()))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantError) || !strings.Contains(err.Error(), strconv.Itoa(link.MaxXDPVIPs)) {
				t.Fatalf("Apply: %v, want a refusal naming %q and the map's %d", err, tc.wantError, link.MaxXDPVIPs)
			}
			unchanged(t, d, tc.from)
			if !p.holds(t, tc.from.VIPs()...) {
				t.Errorf("after a refused change: %v, want the old %d VIPs", p, len(tc.from.VIPs()))
			}
		})
	}
}

// TestApplyRefusesVIPHeldByHost: a reload adding a VIP that an interface
// of the director's host holds is refused whole, naming the service and
// the fix, as start-up refuses it (doctor). It used to be applied: the
// kernel answered the VIP's ARP and its traffic beside drlb.
func TestApplyRefusesVIPHeldByHost(t *testing.T) {
	cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
	p := &kernelSidePort{}
	follower := &fakeFollower{widened: func([]netip.Addr) { t.Error("blackhole routes widened for a VIP the host holds") }}
	d, _ := kernelSideDirector(t, cfg, follower, p)
	var asked [][]netip.Addr
	d.vipsHeld = func(v []netip.Addr) (map[netip.Addr]error, error) {
		asked = append(asked, v)
		return map[netip.Addr]error{vip2: fmt.Errorf("%w: configured on eth0", ErrVIPOnHost)}, nil
	}
	next := configOf(service(vip, 80, "rr", resolvedReals()...), service(vip2, 80, "rr", resolvedReals()...))
	next.Services[1].Line = 7
	err := d.Apply(next)
	if !errors.Is(err, ErrVIPOnHost) {
		t.Fatalf("Apply: %v, want ErrVIPOnHost", err)
	}
	for _, want := range []string{"services[1].vip " + vip2.String() + " (line 7)", "configured on eth0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Apply: %v; want it to say %q", err, want)
		}
	}
	if len(asked) != 1 || !slices.Equal(asked[0], []netip.Addr{vip2}) {
		t.Errorf("asked about %v, want only the added VIP %v", asked, vip2)
	}
	unchanged(t, d, cfg, vip2)
	if !p.holds(t, vip) {
		t.Errorf("the port holds %v after the refusal, want the old VIP set %v alone", p, vip)
	}
}
