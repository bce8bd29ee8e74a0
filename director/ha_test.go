package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/vrrp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// fakeVRRP is an in-memory vrrp.Conn: the test writes adverts into in
// and reads what the director sent from out.
type fakeVRRP struct {
	in, out chan []byte
	once    sync.Once
	closed  chan struct{}
}

func newFakeVRRP() *fakeVRRP {
	return &fakeVRRP{in: make(chan []byte, 64), out: make(chan []byte, 1024), closed: make(chan struct{})}
}

func (f *fakeVRRP) Send(p []byte) error {
	select {
	case f.out <- append([]byte(nil), p...):
	default:
	}
	return nil
}

func (f *fakeVRRP) Recv(b []byte) (int, error) {
	select {
	case p := <-f.in:
		return copy(b, p), nil
	case <-f.closed:
		return 0, errors.New("closed")
	}
}

func (f *fakeVRRP) Close() error { f.once.Do(func() { close(f.closed) }); return nil }

// feedAdverts sends advert on conn every 50 ms, as a master does, until
// the returned stop is called (which waits for the feeder to end).
func feedAdverts(conn *fakeVRRP, advert []byte) (stop func()) {
	done, fed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(fed)
		for {
			conn.in <- advert
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() {
		close(done)
		<-fed
	}
}

// noFrame fails if a frame match accepts arrives within d.
func noFrame(t *testing.T, wire link.Port, d time.Duration, what string, match func(gopacket.Packet) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	frames := link.NewFrames(16)
	for {
		n, err := wire.ReadBatch(ctx, frames)
		if err != nil {
			return
		}
		for _, f := range frames[:n] {
			if match(gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)) {
				t.Fatalf("unexpected %s", what)
			}
		}
	}
}

// isGratuitous matches a gratuitous ARP for ip from mac.
func isGratuitous(mac net.HardwareAddr, ip netip.Addr) func(gopacket.Packet) bool {
	return func(p gopacket.Packet) bool {
		a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok || a.Operation != layers.ARPRequest || net.HardwareAddr(a.SourceHwAddress).String() != mac.String() {
			return false
		}
		s, _ := netip.AddrFromSlice(a.SourceProtAddress)
		d, _ := netip.AddrFromSlice(a.DstProtAddress)
		return s == ip && d == ip
	}
}

// TestHAOnlyMasterAnswersARP: a director with ha: answers no ARP for the
// VIP while another router is master, takes over when its adverts stop
// (gratuitous ARP, answers), and gives the VIP up to a higher priority.
func TestHAOnlyMasterAnswersARP(t *testing.T) {
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "mh",
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.11"), Weight: 1, MAC: rs1MAC}},
	}}, HA: &config.HA{VRID: 51, Priority: 150, AdvertInterval: 50 * time.Millisecond, Preempt: true}}
	conn := newFakeVRRP()
	dirPort, wire := link.Pipe()
	self, peer := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	d, err := New(cfg, dirPort, Options{IPv4: self, VRRP: conn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	dirMAC := d.port.HardwareAddr()
	advert, err := (&vrrp.Advert{VRID: 51, Priority: 200, Interval: 50 * time.Millisecond, Addrs: []netip.Addr{vip}}).AppendIPv4(nil, peer, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A higher-priority master advertises.
	stop := make(chan struct{})
	var feeding sync.WaitGroup
	feed := func() {
		stop = make(chan struct{})
		feeding.Add(1)
		go func(stop chan struct{}) {
			defer feeding.Done()
			for {
				conn.in <- advert
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}(stop)
	}
	feed()
	who := framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, netip.MustParseAddr("198.18.0.1"), vip)
	time.Sleep(100 * time.Millisecond)
	send(t, wire, who)
	noFrame(t, wire, 400*time.Millisecond, "ARP answer for the VIP as BACKUP", isARP(layers.ARPReply, vip))
	if h := d.Snapshot(false).HA; h == nil || h.State != "BACKUP" || h.Master != peer || h.MasterPriority != 200 {
		t.Fatalf("HA status %+v", h)
	}

	// It stops: this director takes over, announces and answers.
	close(stop)
	feeding.Wait()
	took := time.Now()
	expectFrame(t, wire, "gratuitous ARP for the VIP", isGratuitous(dirMAC, vip))
	t.Logf("gratuitous ARP %v after the last advert", time.Since(took))
	send(t, wire, who)
	expectFrame(t, wire, "ARP answer for the VIP as MASTER", isARP(layers.ARPReply, vip))
	snap := d.Snapshot(false)
	if h := snap.HA; h.State != "MASTER" || h.Master != self || h.Sent == 0 || h.Transitions != 2 {
		t.Fatalf("HA status %+v", h)
	}
	var line strings.Builder
	control.WriteHA(&line, snap)
	if !strings.HasPrefix(line.String(), "HA MASTER for 0s vrid 51 priority 150 master 198.18.0.2 (priority 150)") {
		t.Errorf("HA line %q", line.String())
	}
	select {
	case b := <-conn.out:
		p, err := vrrp.ParseIPv4(b, nil)
		if err != nil || p.Src != self || p.Priority != 150 || p.VRID != 51 || len(p.Addrs) != 1 || p.Addrs[0] != vip {
			t.Fatalf("advert sent %+v, %v", p, err)
		}
	case <-time.After(time.Second):
		t.Fatal("no advert sent as MASTER")
	}

	// The higher priority comes back: BACKUP, no more answers.
	feed()
	deadline := time.Now().Add(2 * time.Second)
	for d.Snapshot(false).HA.State != "BACKUP" {
		if time.Now().After(deadline) {
			t.Fatal("still MASTER")
		}
		time.Sleep(5 * time.Millisecond)
	}
	send(t, wire, who)
	noFrame(t, wire, 300*time.Millisecond, "ARP answer for the VIP after yielding", isARP(layers.ARPReply, vip))
	close(stop)
	feeding.Wait()
}

// isNA matches a neighbor advertisement for target from mac (an answer or
// an unsolicited one).
func isNA(mac net.HardwareAddr, target netip.Addr) func(gopacket.Packet) bool {
	return func(p gopacket.Packet) bool {
		na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !ok || eth == nil || eth.SrcMAC.String() != mac.String() {
			return false
		}
		got, _ := netip.AddrFromSlice(na.TargetAddress)
		return got == target
	}
}

// TestHAOneVirtualRouterPerFamily: with IPv4 and IPv6 VIPs a director runs
// two virtual routers on the same VRID, as keepalived does: each elects
// for its own family's VIPs. Here another router is IPv6 master only: this
// director becomes IPv4 MASTER (ARP for the IPv4 VIP) and stays IPv6
// BACKUP (no NDP for the IPv6 VIP); when the IPv6 adverts stop it takes
// the IPv6 VIP too (unsolicited NA, adverts from its link-local address to
// ff02::12 carrying the IPv6 VIP alone).
func TestHAOneVirtualRouterPerFamily(t *testing.T) {
	vip6 := netip.MustParseAddr("2001:2::100")
	rs := func(a string) []config.RealServer {
		return []config.RealServer{{Address: netip.MustParseAddr(a), Weight: 1, MAC: rs1MAC}}
	}
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{
		{VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "mh", RealServers: rs("198.18.0.11")},
		{VIP: vip6, Port: 80, Protocol: config.TCP, Scheduler: "mh", RealServers: rs("2001:2::11")},
	}, HA: &config.HA{VRID: 51, Priority: 150, AdvertInterval: 50 * time.Millisecond, Preempt: true}}
	conn4, conn6 := newFakeVRRP(), newFakeVRRP()
	dirPort, wire := link.Pipe()
	self, self6, peer6 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fe80::2"), netip.MustParseAddr("fe80::3")
	if _, err := New(cfg, dirPort, Options{IPv4: self, VRRP: conn4}); err == nil {
		t.Fatal("IPv6 VIPs without an IPv6 VRRP connection: accepted")
	}
	dirPort, wire = link.Pipe()
	d, err := New(cfg, dirPort, Options{IPv4: self, IPv6: self6, VRRP: conn4, VRRP6: conn6})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	dirMAC := d.port.HardwareAddr()
	advert6, err := (&vrrp.Advert{VRID: 51, Priority: 200, Interval: 50 * time.Millisecond, Addrs: []netip.Addr{vip6}}).AppendIPv6(nil, peer6)
	if err != nil {
		t.Fatal(err)
	}
	stopFeed := feedAdverts(conn6, advert6)
	expectFrame(t, wire, "gratuitous ARP for the IPv4 VIP", isGratuitous(dirMAC, vip))
	ns := framegen.NeighborSolicitation(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0x33, 0x33, 0xff, 0, 1, 0}},
		netip.MustParseAddr("2001:2::1"), vip6)
	send(t, wire, ns)
	noFrame(t, wire, 300*time.Millisecond, "NDP for the IPv6 VIP as IPv6 BACKUP", isNA(dirMAC, vip6))
	snap := d.Snapshot(false)
	if h := snap.HA; h == nil || h.Family != "ipv4" || h.State != "MASTER" {
		t.Fatalf("IPv4 status %+v", h)
	}
	if h := snap.HA6; h == nil || h.Family != "ipv6" || h.State != "BACKUP" || h.Master != peer6 || h.MasterPriority != 200 {
		t.Fatalf("IPv6 status %+v", h)
	}
	var lines strings.Builder
	control.WriteHA(&lines, snap)
	if got := lines.String(); !strings.Contains(got, "HA ipv4 MASTER for 0s vrid 51 priority 150 master 198.18.0.2 (priority 150)\n") ||
		!strings.Contains(got, "HA ipv6 BACKUP for 0s vrid 51 priority 150 master fe80::3 (priority 200)\n") {
		t.Errorf("HA lines %q", got)
	}
	for len(conn6.out) > 0 {
		<-conn6.out
	}

	stopFeed()
	expectFrame(t, wire, "unsolicited NA for the IPv6 VIP", isNA(dirMAC, vip6))
	send(t, wire, ns)
	expectFrame(t, wire, "NDP answer for the IPv6 VIP as IPv6 MASTER", isNA(dirMAC, vip6))
	select {
	case b := <-conn6.out:
		p, err := vrrp.ParseIPv6(b, nil)
		if err != nil || p.Src != self6 || p.Priority != 150 || p.VRID != 51 || len(p.Addrs) != 1 || p.Addrs[0] != vip6 {
			t.Fatalf("IPv6 advert sent %+v, %v", p, err)
		}
	case <-time.After(time.Second):
		t.Fatal("no IPv6 advert sent as MASTER")
	}
	select {
	case b := <-conn4.out:
		p, err := vrrp.ParseIPv4(b, nil)
		if err != nil || len(p.Addrs) != 1 || p.Addrs[0] != vip {
			t.Fatalf("IPv4 advert sent %+v, %v", p, err)
		}
	case <-time.After(time.Second):
		t.Fatal("no IPv4 advert sent as MASTER")
	}
}

// TestHAIPv6Only: a director with IPv6 VIPs alone and no IPv4 address
// runs the IPv6 virtual router alone.
func TestHAIPv6Only(t *testing.T) {
	vip6 := netip.MustParseAddr("2001:2::100")
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{
		{VIP: vip6, Port: 80, Protocol: config.TCP, Scheduler: "mh", PersistenceBits: 128,
			RealServers: []config.RealServer{{Address: netip.MustParseAddr("2001:2::11"), Weight: 1, MAC: rs1MAC}}},
	}, HA: &config.HA{VRID: 51, Priority: 150, AdvertInterval: 20 * time.Millisecond, Preempt: true}}
	conn6 := newFakeVRRP()
	dirPort, wire := link.Pipe()
	d, err := New(cfg, dirPort, Options{IPv6: netip.MustParseAddr("fe80::2"), VRRP6: conn6})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	expectFrame(t, wire, "unsolicited NA for the IPv6 VIP", isNA(d.port.HardwareAddr(), vip6))
	snap := d.Snapshot(false)
	if h := snap.HA; h == nil || h.Family != "ipv6" || h.State != "MASTER" || snap.HA6 != nil {
		t.Fatalf("status %+v %+v", snap.HA, snap.HA6)
	}
	// A reload adding the first IPv4 VIP needs a restart (its virtual router).
	next := cfg.Clone()
	next.Services = append(next.Services, config.Service{VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "mh", PersistenceBits: 32,
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.11"), Weight: 1, MAC: rs1MAC}}})
	if err := d.Apply(next); !errors.Is(err, ErrRestartNeeded) {
		t.Fatalf("Apply: %v, want ErrRestartNeeded", err)
	}
}

// TestShutdownGraceCoversSkew: a master that stops forwards on until the
// backup has taken over, which it does after its skew time after the
// priority-0 advert: (256-priority)/256 of the interval, 609 ms for a
// priority-100 backup at keepalived's default 1 s. A fixed 500 ms left
// the router sending to a stopped director for up to 496 ms.
func TestShutdownGraceCoversSkew(t *testing.T) {
	master, backup := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	for _, interval := range []time.Duration{config.DefaultAdvertInterval, 100 * time.Millisecond, 5 * time.Second} {
		for _, prio := range []uint8{1, 100, 254} {
			m, err := vrrp.NewMachine(vrrp.Config{VRID: 51, Priority: prio, Interval: interval, Preempt: true, Self: backup})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Unix(1000, 0)
			m.Start(t0)
			resign, err := (&vrrp.Advert{VRID: 51, Priority: 0, Interval: interval}).AppendIPv4(nil, master, 1)
			if err != nil {
				t.Fatal(err)
			}
			m.Receive(t0, resign)
			if took := m.Next().Sub(t0); took > shutdownGrace(interval) {
				t.Errorf("interval %v: a backup of priority %d takes over %v after the priority-0 advert; the stopping master forwards for %v", interval, prio, took, shutdownGrace(interval))
			}
		}
	}
}

// TestPreemptedMasterDoesNotDefend: a master preempted by a peer that
// sends its gratuitous ARP just before its first advert (drlb's order)
// does not answer with a burst of its own, which moved the router back
// to the director becoming BACKUP: it defends only if it is still
// master one advert interval after the claim.
func TestPreemptedMasterDoesNotDefend(t *testing.T) {
	cfg := configOf(service(vip, 80, "mh", realAt(1, 1, rs1MAC)))
	cfg.HA = &config.HA{VRID: 51, Priority: 150, AdvertInterval: 50 * time.Millisecond, Preempt: true}
	conn := newFakeVRRP()
	dirPort, wire := link.Pipe()
	defer wire.Close()
	d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.DiscardHandler), IPv4: netip.MustParseAddr("198.18.0.2"), VRRP: conn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "MASTER", func() bool { return d.Snapshot(false).HA.State == "MASTER" })
	time.Sleep(2500 * time.Millisecond) // past the repeat burst
	frames := link.NewFrames(64)
	count := func(d time.Duration) (n int) {
		c, cc := context.WithTimeout(context.Background(), d)
		defer cc()
		for {
			k, err := wire.ReadBatch(c, frames)
			if err != nil {
				return n
			}
			for _, f := range frames[:k] {
				if isGratuitous(dirPort.HardwareAddr(), vip)(gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)) {
					n++
				}
			}
		}
	}
	count(50 * time.Millisecond)
	// A priority-200 director takes over: its gratuitous ARP first, then
	// its advert.
	peerMAC := net.HardwareAddr{2, 0, 0, 0, 0, 0x33}
	send(t, wire, framegen.ARPRequest(framegen.L2{Src: peerMAC, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, vip, vip))
	time.Sleep(time.Millisecond)
	adv, err := (&vrrp.Advert{VRID: 51, Priority: 200, Interval: 50 * time.Millisecond, Addrs: []netip.Addr{vip}}).AppendIPv4(nil, netip.MustParseAddr("198.18.0.3"), 1)
	if err != nil {
		t.Fatal(err)
	}
	// The new master goes on advertising (or this one would take over
	// again after the master-down interval).
	stopFeed := feedAdverts(conn, adv)
	n := count(300 * time.Millisecond)
	state := d.Snapshot(false).HA.State
	stopFeed()
	if n > 0 || state != "BACKUP" {
		t.Errorf("state %s; %d gratuitous ARPs sent after the new master's", state, n)
	}
}

// serveHA serves cfg on dirPort with conn as its IPv4 VRRP connection,
// from 198.18.0.2, logging as text into the buffer it returns; the
// director resigns and stops when the test ends.
func serveHA(t *testing.T, cfg *config.Config, dirPort link.Port, conn vrrp.Conn) (*Director, *testutil.SyncBuffer) {
	t.Helper()
	logs := new(testutil.SyncBuffer)
	d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), IPv4: netip.MustParseAddr("198.18.0.2"), VRRP: conn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("director log:\n%s", logs)
		}
	})
	return d, logs
}

// haConf parses a keepalived.conf whose VRRPv3 instance (50 ms adverts)
// holds vips (its virtual_ipaddress and virtual_ipaddress_excluded
// blocks), with a virtual_server on 198.18.0.100 and one on 198.18.0.101;
// or, for drlb.yaml, the same two services with an ha: block.
func haConf(t *testing.T, file, vips string) *config.Config {
	t.Helper()
	conf := "vrrp_instance VI_1 {\n version 3\n virtual_router_id 51\n priority 150\n advert_int 0.05\n " + vips + "}\n" +
		"virtual_server 198.18.0.100 80 {\n lb_algo mh\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  weight 1\n }\n}\n" +
		"virtual_server 198.18.0.101 80 {\n lb_algo mh\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  weight 1\n }\n}\n"
	if file == "drlb.yaml" {
		conf = "ha:\n  vrid: 51\n  priority: 150\n  advert_interval: 50ms\nservices:\n" +
			"  - {vip: 198.18.0.100, port: 80, scheduler: mh, realservers: [{address: 198.18.0.11}]}\n" +
			"  - {vip: 198.18.0.101, port: 80, scheduler: mh, realservers: [{address: 198.18.0.11}]}\n"
	}
	cfg, _, err := config.ParseWithWarnings(file, []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Services {
		cfg.Services[i].RealServers[0].MAC = rs1MAC
	}
	return cfg
}

// advertAddrsOf waits for an advert on conn and returns its addresses.
func advertAddrsOf(t *testing.T, conn *fakeVRRP) string {
	t.Helper()
	select {
	case pkt := <-conn.out:
		p, err := vrrp.ParseIPv4(pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(p.Addrs)
	case <-time.After(3 * time.Second):
		t.Fatal("no advert")
		return ""
	}
}

// TestHAAdvertsCarryKeepalivedAddresses: from a keepalived.conf the
// adverts carry exactly the instance's virtual_ipaddress, as a keepalived
// peer reading the same file sends and expects: it drops an advert whose
// count or addresses differ (vrrp_in_chk), so with the VIPs it never
// heard drlb and both were MASTER. From YAML they carry the VIPs.
func TestHAAdvertsCarryKeepalivedAddresses(t *testing.T) {
	for _, tc := range []struct{ name, file, vips, want string }{
		{"an address that is no VIP", "keepalived.conf", "virtual_ipaddress {\n  198.18.0.100\n  198.18.0.101\n  198.18.0.50\n }\n", "[198.18.0.100 198.18.0.101 198.18.0.50]"},
		{"a VIP in virtual_ipaddress_excluded", "keepalived.conf", "virtual_ipaddress {\n  198.18.0.100\n }\n virtual_ipaddress_excluded {\n  198.18.0.101\n }\n", "[198.18.0.100]"},
		{"YAML: the VIPs", "drlb.yaml", "", "[198.18.0.100 198.18.0.101]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := newFakeVRRP()
			dirPort, wire := link.Pipe()
			defer wire.Close()
			d, _ := serveHA(t, haConf(t, tc.file, tc.vips), dirPort, conn)
			if got := advertAddrsOf(t, conn); got != tc.want {
				t.Errorf("adverts carry %s, want %s", got, tc.want)
			}
			// What the director answers ARP for is still the VIPs (once
			// the runner, having sent its advert, reports the change).
			waitFor(t, "ARP answered for the VIPs", func() bool {
				return fmt.Sprint(d.ownedVIPs(d.cur.Load())) == "[198.18.0.100 198.18.0.101]"
			})
		})
	}
}

// TestHAReloadChangesAdvertAddresses: a reload that changes
// virtual_ipaddress is applied live, as keepalived applies its own (the
// VIPs it lists change live too), and warned about: a keepalived peer
// drops the adverts until it carries the same list. A reload that leaves
// the list alone warns nothing.
func TestHAReloadChangesAdvertAddresses(t *testing.T) {
	const warning = "the adverts carry another address list"
	for _, tc := range []struct {
		name, from, to, want string
		warn                 bool
	}{
		{"virtual_ipaddress gains an address", "virtual_ipaddress {\n  198.18.0.100\n  198.18.0.101\n }\n",
			"virtual_ipaddress {\n  198.18.0.100\n  198.18.0.101\n  198.18.0.50\n }\n", "[198.18.0.100 198.18.0.101 198.18.0.50]", true},
		{"a VIP moves to virtual_ipaddress_excluded", "virtual_ipaddress {\n  198.18.0.100\n  198.18.0.101\n }\n",
			"virtual_ipaddress {\n  198.18.0.100\n }\n virtual_ipaddress_excluded {\n  198.18.0.101\n }\n", "[198.18.0.100]", true},
		{"virtual_ipaddress_excluded alone changes", "virtual_ipaddress {\n  198.18.0.100\n }\n virtual_ipaddress_excluded {\n  198.18.0.101\n }\n",
			"virtual_ipaddress {\n  198.18.0.100\n }\n virtual_ipaddress_excluded {\n  198.18.0.101\n  198.18.0.60\n }\n", "[198.18.0.100]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := newFakeVRRP()
			dirPort, wire := link.Pipe()
			defer wire.Close()
			d, logs := serveHA(t, haConf(t, "keepalived.conf", tc.from), dirPort, conn)
			advertAddrsOf(t, conn) // master
			if err := d.Apply(haConf(t, "keepalived.conf", tc.to)); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			for len(conn.out) > 0 { // adverts sent before the reload
				<-conn.out
			}
			advertAddrsOf(t, conn) // may have been built before the reload
			if got := advertAddrsOf(t, conn); got != tc.want {
				t.Errorf("adverts after the reload carry %s, want %s", got, tc.want)
			}
			if got := strings.Contains(logs.String(), warning); got != tc.warn {
				t.Errorf("warned %t, want %t (%q)", got, tc.warn, warning)
			}
		})
	}
}

// TestHABurstOnlyWhileMaster: a burst of gratuitous ARP goes out only
// while its virtual router is master in the generation it was scheduled
// for. A reload read master and then the generation apart: becoming
// BACKUP in between gave the burst BACKUP's generation, which it took
// for its own, and a backup claimed the VIPs. Nor does it announce a VIP
// a reload removed since it was scheduled (its repeat comes 2 s later).
func TestHABurstOnlyWhileMaster(t *testing.T) {
	for _, tc := range []struct {
		name   string
		master bool
		gen    uint64 // the burst's; the router is in generation 7
		want   int
		gone   bool // a reload removed the VIP after the burst was scheduled
	}{
		{"master, its generation", true, 7, haGARPCount, false},
		{"backup, its generation (read after it left MASTER)", false, 7, 0, false},
		{"master since another transition", true, 6, 0, false},
		{"master, its generation, the VIP removed since", true, 7, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configOf(service(vip, 80, "mh", realAt(1, 1, rs1MAC)))
			cfg.HA = &config.HA{VRID: 51, Priority: 150, AdvertInterval: time.Second, Preempt: true}
			dirPort, wire := link.Pipe()
			defer wire.Close()
			d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.DiscardHandler), IPv4: netip.MustParseAddr("198.18.0.2"), VRRP: newFakeVRRP()})
			if err != nil {
				t.Fatal(err)
			}
			// Not served: no runner changes the state behind the test.
			h, i := d.ha, d.ha.inst[0]
			h.mu.Lock()
			i.role.v.Store(7 << 1)
			if tc.master {
				i.role.v.Store(7<<1 | 1)
			}
			owned := d.ownedVIPs(cfg)
			if tc.gone {
				owned = nil
			}
			if err := d.responder.SetVIPs(owned); err != nil {
				t.Fatal(err)
			}
			h.mu.Unlock()
			h.burst(i, tc.gen, []netip.Addr{vip})
			if got := gratuitousQueued(wire, dirPort.HardwareAddr(), vip); got != tc.want {
				t.Errorf("%d gratuitous ARPs sent, want %d", got, tc.want)
			}
		})
	}
}

// gratuitousQueued takes what waits on wire and counts the gratuitous
// ARPs for ip from mac among it.
func gratuitousQueued(wire link.Port, mac net.HardwareAddr, ip netip.Addr) int {
	frames := link.NewFrames(64)
	n := 0
	for {
		k, _ := wire.(link.ReadAheader).TryReadBatch(frames)
		if k == 0 {
			return n
		}
		for _, f := range frames[:k] {
			if isGratuitous(mac, ip)(gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)) {
				n++
			}
		}
	}
}

// garpsBeforeAdvert is a fakeVRRP that, as it sends its first advert,
// counts the gratuitous ARPs already on the wire.
type garpsBeforeAdvert struct {
	*fakeVRRP
	wire   link.Port
	mac    net.HardwareAddr
	before chan int
}

func (c *garpsBeforeAdvert) Send(p []byte) error {
	select {
	case c.before <- gratuitousQueued(c.wire, c.mac, vip):
	default: // not the first
	}
	return c.fakeVRRP.Send(p)
}

// TestHAAdvertBeforeGratuitousARP: a new master sends its advert first,
// then its gratuitous ARP (RFC 5798 6.4.2), so the backups hear it at
// once however many VIPs it announces; the burst, 5 per VIP, went out
// before the advert, from under the runner's lock.
func TestHAAdvertBeforeGratuitousARP(t *testing.T) {
	cfg := configOf(service(vip, 80, "mh", realAt(1, 1, rs1MAC)), service(vip2, 80, "mh", realAt(1, 1, rs1MAC)))
	cfg.HA = &config.HA{VRID: 51, Priority: 150, AdvertInterval: 50 * time.Millisecond, Preempt: true}
	dirPort, wire := link.Pipe()
	defer wire.Close()
	conn := &garpsBeforeAdvert{fakeVRRP: newFakeVRRP(), wire: wire, mac: dirPort.HardwareAddr(), before: make(chan int, 1)}
	serveHA(t, cfg, dirPort, conn)
	select {
	case n := <-conn.before:
		if n != 0 {
			t.Errorf("%d gratuitous ARPs were sent before the first advert", n)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no advert")
	}
	expectFrame(t, wire, "gratuitous ARP after the advert", isGratuitous(dirPort.HardwareAddr(), vip))
}

// TestHAStoppedBeforeStart: a director with ha: (or bgp:) runs through
// serveHandingOver, which hands Serve a context of its own: a SIGTERM
// during start-up must still keep it from starting VRRP and calling
// Ready (systemd READY=1 after STOPPING=1).
func TestHAStoppedBeforeStart(t *testing.T) {
	cfg := configOf(service(vip, 80, "mh", realAt(1, 1, rs1MAC)))
	cfg.HA = &config.HA{VRID: 51, Priority: 150, AdvertInterval: 50 * time.Millisecond, Preempt: true}
	conn := newFakeVRRP()
	dirPort, wire := link.Pipe()
	defer wire.Close()
	var ready atomic.Int32
	d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.DiscardHandler), IPv4: netip.MustParseAddr("198.18.0.2"), VRRP: conn,
		Ready: func() { ready.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // SIGTERM while the tables were faulted in
	if err := d.ha.serve(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n := ready.Load(); n != 0 {
		t.Errorf("Ready called %d time(s) for a director with ha: stopped before it started", n)
	}
}

// dualStackMaster is a director (not served) whose IPv4 and IPv6 virtual
// routers are both master, with vip and vip6, 20 ms adverts: nothing
// changes behind the test.
func dualStackMaster(t *testing.T, vip6 netip.Addr) (*Director, link.Port, link.Port, *testutil.SyncBuffer) {
	t.Helper()
	cfg := configOf(service(vip, 80, "mh", realAt(1, 1, rs1MAC)))
	cfg.Services = append(cfg.Services, config.Service{VIP: vip6, Port: 80, Protocol: config.TCP, Scheduler: "mh",
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("2001:2::11"), Weight: 1, MAC: rs1MAC}}})
	cfg.HA = &config.HA{VRID: 51, Priority: 150, AdvertInterval: 20 * time.Millisecond, Preempt: true}
	dirPort, wire := link.Pipe()
	t.Cleanup(func() { wire.Close() })
	logs := new(testutil.SyncBuffer)
	d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)),
		IPv4: netip.MustParseAddr("198.18.0.2"), IPv6: netip.MustParseAddr("fe80::2"), VRRP: newFakeVRRP(), VRRP6: newFakeVRRP()})
	if err != nil {
		t.Fatal(err)
	}
	h := d.ha
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, i := range h.inst {
		i.role.v.Store(7<<1 | 1)
	}
	if err := d.responder.SetVIPs(d.ownedVIPs(cfg)); err != nil {
		t.Fatal(err)
	}
	return d, dirPort, wire, logs
}

// TestConflictHoldoffPerFamily: a claim on an IPv4 VIP does not hold off
// the defence of an IPv6 one for the next 10 s, nor the reverse: the two
// families move independently (a peer taking the IPv4 VIPs over is no
// reason to ignore a real server answering NDP for an IPv6 one).
func TestConflictHoldoffPerFamily(t *testing.T) {
	vip6 := netip.MustParseAddr("2001:2::100")
	d, _, _, logs := dualStackMaster(t, vip6)
	other := arp.MAC{2, 0, 0, 0, 0, 0x33}
	d.conflict(arp.Conflict{VIP: vip, MAC: other})
	d.conflict(arp.Conflict{VIP: vip, MAC: other}) // held off
	d.conflict(arp.Conflict{VIP: vip6, MAC: other})
	waitFor(t, "both families warned", func() bool {
		return strings.Count(logs.String(), "another station claims a VIP") >= 2
	})
	time.Sleep(100 * time.Millisecond) // 5 advert intervals: a third would have come
	out := logs.String()
	if strings.Count(out, "another station claims a VIP") != 2 || !strings.Contains(out, "family=ipv4") || !strings.Contains(out, "family=ipv6") {
		t.Fatalf("want one warning per family:\n%s", out)
	}
}

// TestHADefendsOnlyTheClaimedFamily: the IPv4 and IPv6 virtual routers
// move independently, so a claim on a VIP of one family (a peer taking
// the IPv4 VIPs over, its gratuitous ARP first) concerns that family's
// router alone. Every master router answered it: the IPv6 one, still
// master, warned of a station claiming a VIP and sent its unsolicited NAs.
func TestHADefendsOnlyTheClaimedFamily(t *testing.T) {
	vip6 := netip.MustParseAddr("2001:2::100")
	for _, tc := range []struct {
		name         string
		claimed      netip.Addr
		garps, nas   int
		warnedFamily string
		quietFamily  string
	}{
		{"an IPv4 VIP claimed", vip, haGARPCount, 0, "family=ipv4", "family=ipv6"},
		{"an IPv6 VIP claimed", vip6, 0, haGARPCount, "family=ipv6", "family=ipv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, dirPort, wire, logs := dualStackMaster(t, vip6)
			d.ha.defend(arp.Conflict{VIP: tc.claimed, MAC: arp.MAC{2, 0, 0, 0, 0, 0x33}})
			mac := dirPort.HardwareAddr()
			garps, nas := 0, 0
			frames := link.NewFrames(64)
			// The claimed family's burst, then a while for the other's.
			deadline := time.Now().Add(3 * time.Second)
			var quietUntil time.Time
			for {
				k, _ := wire.(link.ReadAheader).TryReadBatch(frames)
				for _, f := range frames[:k] {
					p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
					if isGratuitous(mac, vip)(p) {
						garps++
					}
					if isNA(mac, vip6)(p) {
						nas++
					}
				}
				now := time.Now()
				if quietUntil.IsZero() && garps+nas >= haGARPCount {
					quietUntil = now.Add(200 * time.Millisecond)
				}
				if !quietUntil.IsZero() && now.After(quietUntil) || now.After(deadline) {
					break
				}
				if k == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			if garps != tc.garps || nas != tc.nas {
				t.Errorf("%d gratuitous ARPs for %v and %d unsolicited NAs for %v, want %d and %d", garps, vip, nas, vip6, tc.garps, tc.nas)
			}
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "another station claims a VIP") && strings.Contains(line, tc.quietFamily) {
					t.Errorf("the other family's router warned: %s", line)
				}
			}
			if !strings.Contains(logs.String(), tc.warnedFamily) {
				t.Errorf("no warning for the claimed family (%s):\n%s", tc.warnedFamily, logs)
			}
		})
	}
}

// TestApplyHAChangeNamesValues: a reload that changes a setting of the
// ha: block is refused, the running configuration kept, with the setting
// and both its values (a keepalived.conf's priority 150 made 100 said
// "ha.priority changed", not which priority runs).
func TestApplyHAChangeNamesValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.HA)
		want string
	}{
		{"vrid with priority (applied live alone)", func(h *config.HA) { h.Priority, h.VRID = 100, 52 }, "ha.vrid 51 -> 52"},
		{"vrid", func(h *config.HA) { h.VRID = 52 }, "ha.vrid 51 -> 52"},
		{"advert_interval", func(h *config.HA) { h.AdvertInterval = time.Second }, "ha.advert_interval 50ms -> 1s"},
		{"preempt", func(h *config.HA) { h.Preempt = false }, "ha.preempt true -> false"},
		{"preempt_delay", func(h *config.HA) { h.PreemptDelay = 5 * time.Second }, "ha.preempt_delay 0s -> 5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configOf(service(vip, 80, "mh", realAt(1, 1, rs1MAC)))
			cfg.HA = &config.HA{VRID: 51, Priority: 150, AdvertInterval: 50 * time.Millisecond, Preempt: true}
			dirPort, wire := link.Pipe()
			defer wire.Close()
			d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.DiscardHandler), IPv4: netip.MustParseAddr("198.18.0.2"), VRRP: newFakeVRRP()})
			if err != nil {
				t.Fatal(err)
			}
			next := cfg.Clone()
			tc.edit(next.HA)
			err = d.Apply(next)
			if !errors.Is(err, ErrRestartNeeded) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Apply: %v, want ErrRestartNeeded saying %q", err, tc.want)
			}
			if got := d.Config().HA; config.HAChanged(got, cfg.HA) != "" {
				t.Errorf("running ha: %+v, want %+v kept", got, cfg.HA)
			}
		})
	}
}

// TestApplyHAPriorityLive: a reload with another ha.priority is applied
// live, as keepalived applies one: a master's advert with the new
// priority goes out at once, and a peer of a higher priority then takes
// over (lowering the master's priority hands the VIPs over for
// maintenance). It needed a restart.
func TestApplyHAPriorityLive(t *testing.T) {
	cfg := configOf(service(vip, 80, "mh", realAt(1, 1, rs1MAC)))
	cfg.HA = &config.HA{VRID: 51, Priority: 150, AdvertInterval: 50 * time.Millisecond, Preempt: true}
	conn := newFakeVRRP()
	dirPort, wire := link.Pipe()
	self, peer := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.DiscardHandler), IPv4: self, VRRP: conn})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	state := func() *control.HAStatus { return d.Snapshot(false).HA }
	waitFor(t, "MASTER alone", func() bool { return state().State == "MASTER" })

	next := cfg.Clone()
	next.HA.Priority = 50
	if err := d.Apply(next); err != nil {
		t.Fatalf("Apply of another priority: %v", err)
	}
	if p := state().Priority; p != 50 {
		t.Fatalf("priority %d after the reload, want 50", p)
	}
	// The advert with it went out at once (the 50 ms timer aside).
	waitFor(t, "an advert with priority 50", func() bool {
		for {
			select {
			case b := <-conn.out:
				if p, err := vrrp.ParseIPv4(b, nil); err == nil && p.Priority == 50 {
					return true
				}
			default:
				return false
			}
		}
	})
	// A peer at 100 (a backup with preempt, taking over) is now above it.
	advert, err := (&vrrp.Advert{VRID: 51, Priority: 100, Interval: 50 * time.Millisecond, Addrs: []netip.Addr{vip}}).AppendIPv4(nil, peer, 1)
	if err != nil {
		t.Fatal(err)
	}
	stop := feedAdverts(conn, advert)
	defer stop()
	waitFor(t, "BACKUP under the peer at 100", func() bool { return state().State == "BACKUP" })
}

// TestHAReloadAddedVIPAnnouncedTwice: a VIP a reload adds while master is
// announced at once and again haGARPRepeat later, as a new master's VIPs
// are, for caches that ignored or missed the first burst. It got the
// first burst only.
func TestHAReloadAddedVIPAnnouncedTwice(t *testing.T) {
	d, dirPort, wire, _ := dualStackMaster(t, netip.MustParseAddr("2001:2::100"))
	cfg := d.cur.Load()
	d.ha.reload(cfg, cfg, []netip.Addr{vip})
	garps := 0
	frames := link.NewFrames(64)
	deadline := time.Now().Add(haGARPRepeat + time.Second)
	for time.Now().Before(deadline) && garps < 2*haGARPCount {
		k, _ := wire.(link.ReadAheader).TryReadBatch(frames)
		for _, f := range frames[:k] {
			if isGratuitous(dirPort.HardwareAddr(), vip)(gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)) {
				garps++
			}
		}
		if k == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if garps != 2*haGARPCount {
		t.Fatalf("%d gratuitous ARPs for the VIP added, want %d (a burst, and another %v later)", garps, 2*haGARPCount, haGARPRepeat)
	}
}

// TestAddrsFollowVIPs: the adverts' address list follows the VIPs for a
// YAML ha: block and for IPv6 (an advert with another list is taken),
// not for a keepalived.conf's virtual_ipaddress (checked as keepalived).
func TestAddrsFollowVIPs(t *testing.T) {
	yaml := &config.Config{HA: &config.HA{VRID: 51}}
	ka := &config.Config{HA: &config.HA{VRID: 51, Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}}
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		v6   bool
		want bool
	}{
		{"yaml v4", yaml, false, true},
		{"yaml v6", yaml, true, true},
		{"keepalived v4", ka, false, false},
		{"keepalived v6", ka, true, true},
	} {
		if got := addrsFollowVIPs(tc.cfg, tc.v6); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestHAReloadSwitchesAddrCheck: a reload that turns the file from YAML
// (the list follows the VIPs: an advert with another one is taken) into
// a keepalived.conf (virtual_ipaddress: checked as keepalived checks it),
// or back, changes how the next advert with another list is treated. It
// kept the check the director started with.
func TestHAReloadSwitchesAddrCheck(t *testing.T) {
	const vips = "virtual_ipaddress {\n  198.18.0.100\n  198.18.0.101\n }\n"
	for _, tc := range []struct{ from, to string }{
		{"drlb.yaml", "keepalived.conf"},
		{"keepalived.conf", "drlb.yaml"},
	} {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			conn := newFakeVRRP()
			dirPort, wire := link.Pipe()
			defer wire.Close()
			d, _ := serveHA(t, haConf(t, tc.from, vips), dirPort, conn)
			advertAddrsOf(t, conn)
			if err := d.Apply(haConf(t, tc.to, vips)); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			want := addrsFollowVIPs(d.cur.Load(), false)
			adv, err := (&vrrp.Advert{VRID: 51, Priority: 200, Interval: 50 * time.Millisecond,
				Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}).AppendIPv4(nil, netip.MustParseAddr("198.18.0.3"), 1)
			if err != nil {
				t.Fatal(err)
			}
			conn.in <- adv
			waitFor(t, "the advert handled", func() bool {
				st := d.ha.inst[0].runner.Stats()
				return st.AddrListTaken+st.Ignored["addr_list"] > 0
			})
			st := d.ha.inst[0].runner.Stats()
			if taken := st.AddrListTaken > 0; taken != want {
				t.Errorf("after reload to %s: advert with another list taken=%t, want %t (addrsFollowVIPs of the new config); ignored=%v",
					tc.to, taken, want, st.Ignored)
			}
		})
	}
}
