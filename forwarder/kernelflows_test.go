package forwarder

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/conntable"
	"github.com/drlb/drlb/internal/framegen"
)

// kernelModel is what the XDP program does with kernel flows
// (link/xdpflows_linux.go), in Go: a frame of a flow it holds, to a
// server it may send to, without SYN, FIN or RST, is forwarded unless
// its refresh is due, in which case it goes to drlb.
type kernelModel struct {
	flows   map[KernelFlowKey]*modelFlow
	servers map[uint32][6]byte
}

type modelFlow struct {
	server  uint32
	refresh time.Duration
	puntAt  int64
}

// apply writes the worker's changes as the director does: removals first.
func (k *kernelModel) apply(t *testing.T, f *Forwarder, now int64) {
	t.Helper()
	add, del, lost := f.KernelFlowChanges()
	if lost {
		clear(k.flows)
	}
	for _, d := range del {
		delete(k.flows, d)
	}
	for _, a := range add {
		if !a.Client.Addr().Is4() || !a.VIP.Addr().Is4() || a.Refresh <= 0 || a.Refresh > kernelFlowRefreshMax {
			t.Fatalf("handed out %+v", a)
		}
		k.flows[KernelFlowKey{a.Client, a.VIP, a.Proto}] = &modelFlow{server: a.Server, refresh: a.Refresh, puntAt: now + int64(a.Refresh)}
	}
	k.follow(f, now)
}

// follow rewrites the servers, as the director does every 50 ms and when
// the servers change.
func (k *kernelModel) follow(f *Forwarder, now int64) {
	clear(k.servers)
	for _, s := range f.KernelServers(now) {
		k.servers[s.ID] = s.MAC
	}
}

// forward returns the MAC the kernel forwards frame to, if it does.
func (k *kernelModel) forward(frame []byte, now int64) ([6]byte, bool) {
	var key KernelFlowKey
	ip := frame[14:]
	if binary.BigEndian.Uint16(frame[12:14]) != 0x0800 || ip[0] != 0x45 {
		return [6]byte{}, false
	}
	l4 := ip[20:]
	key.Proto = ip[9]
	if key.Proto == protoTCP && l4[13]&(tcpSYN|tcpFIN|tcpRST) != 0 {
		return [6]byte{}, false
	}
	key.Client = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(l4[0:2]))
	key.VIP = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(l4[2:4]))
	fl, ok := k.flows[key]
	if !ok {
		return [6]byte{}, false
	}
	if now >= fl.puntAt {
		fl.puntAt = now + int64(fl.refresh)
		return [6]byte{}, false
	}
	mac, ok := k.servers[fl.server]
	return mac, ok
}

// TestKernelFlowsMatchDrlb runs traffic through a forwarder with kernel
// flows and the model of the XDP program in front of it, next to a
// forwarder without, which sees every frame: every frame the kernel
// forwards, the plain forwarder forwards to the same server as an
// existing connection's; every frame that reaches drlb gets the plain
// forwarder's verdict and output; while connections open and close,
// servers fail and come back, and the clock jumps past the timeouts.
func TestKernelFlowsMatchDrlb(t *testing.T) {
	mk := func() *Forwarder {
		cfg := testConfig("wrr", 3)
		// Timeouts far beyond the gaps between a flow's frames, but for
		// the jumps: an entry outlives its flow's last frame by up to a
		// Refresh more with kernel flows (TestKernelFlowsTimeout).
		cfg.Timeouts = config.Timeouts{TCPEstablished: 10 * time.Minute, TCPSynRecv: 10 * time.Second,
			TCPFinWait: 10 * time.Second, TCPClose: 5 * time.Second, UDP: 10 * time.Minute}
		return newForwarder(t, cfg, Options{SweepBudget: 2})
	}
	kf, plain := mk(), mk()
	kf.EnableKernelFlows()
	k := &kernelModel{flows: map[KernelFlowKey]*modelFlow{}, servers: map[uint32][6]byte{}}
	rng := rand.New(rand.NewPCG(3, 4))
	clients := make([]netip.AddrPort, 30)
	for i := range clients {
		clients[i] = client(i%5, uint16(5000+i))
	}
	now := t0
	inKernel, toDrlb := 0, 0

	for i := range 30000 {
		switch {
		case i%2500 == 2499:
			now += int64(15 * time.Minute) // everything expires
		case i%700 == 350:
			svc, ri, up := rng.IntN(2), rng.IntN(3), rng.IntN(2) == 0 // TCP or UDP service
			for _, f := range []*Forwarder{kf, plain} {
				if err := f.SetAvailable(svc, ri, up); err != nil {
					t.Fatal(err)
				}
			}
			k.follow(kf, now)
		}
		c := clients[rng.IntN(len(clients))]
		var fr []byte
		switch rng.IntN(10) {
		case 0:
			fr = syn(c)
		case 1:
			fr = fin(c)
		case 2:
			fr = framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "R", 3, 0, nil)
		case 3, 4, 5:
			fr = framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("q"))
		default:
			fr = ack(c)
		}
		want := append([]byte(nil), fr...)
		rp := plain.Process(want, &Meta{Time: now})
		if mac, ok := k.forward(fr, now); ok {
			inKernel++
			if rp.Verdict != Forward || rp.Reason != ReasonExisting || !bytes.Equal(want[0:6], mac[:]) {
				t.Fatalf("frame %d (% x): the kernel forwarded it to %x; drlb alone: %+v to %x", i, fr[:54], mac, rp, want[0:6])
			}
		} else {
			toDrlb++
			got := append([]byte(nil), fr...)
			if r := kf.Process(got, &Meta{Time: now}); r != rp || !bytes.Equal(got, want) {
				t.Fatalf("frame %d (% x): with kernel flows %+v, drlb alone %+v (frames equal: %v)", i, fr[:54], r, rp, bytes.Equal(got, want))
			}
		}
		if i%50 == 0 {
			kf.Tick(now, 64)
			plain.Tick(now, 64)
		}
		k.apply(t, kf, now)
		// Mostly a frame per flow every few hundred milliseconds (a
		// Refresh is kernelFlowRefreshMax here), now and then a pause.
		step := rng.IntN(30)
		if rng.IntN(100) == 0 {
			step = 3000
		}
		now += int64(step) * int64(time.Millisecond)
	}
	t.Logf("%d frames forwarded in the kernel, %d by drlb", inKernel, toDrlb)
	if inKernel < 3000 || toDrlb < 3000 {
		t.Fatalf("%d frames forwarded in the kernel, %d by drlb: the test did not exercise both", inKernel, toDrlb)
	}
}

// TestKernelFlowsHandOut: what is handed out and taken back, and when.
func TestKernelFlowsHandOut(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	c := client(0, 40000)
	process(t, f, syn(c), t0)
	process(t, f, ack(c), t0) // the handshake's: a state change, full path
	if add, del, _ := f.KernelFlowChanges(); len(add)+len(del) != 0 {
		t.Fatalf("kernel flows not enabled, changes %v %v", add, del)
	}
	f.EnableKernelFlows()
	res, out := process(t, f, ack(c), t0+second)
	expect(t, res, Forward, ReasonExisting)
	add, del, lost := f.KernelFlowChanges()
	if len(add) != 1 || len(del) != 0 || lost {
		t.Fatalf("after an established frame: add %v del %v lost %v", add, del, lost)
	}
	a := add[0]
	if a.Client != c || a.VIP != netip.AddrPortFrom(vip, 80) || a.Proto != protoTCP || a.Refresh != kernelFlowRefreshMax {
		t.Fatalf("handed out %+v", a)
	}
	handed := func(want int64, when string) {
		t.Helper()
		if got := f.KernelFlowsOut(); got != want {
			t.Errorf("%s: %d flows out, want %d", when, got, want)
		}
	}
	handed(1, "handed out")
	var mac [6]byte
	for _, s := range f.KernelServers(t0) {
		if s.ID == a.Server {
			mac = s.MAC
		}
	}
	if !bytes.Equal(mac[:], out[0:6]) {
		t.Fatalf("server %#x has MAC %x in KernelServers, drlb forwarded to %x", a.Server, mac, out[0:6])
	}
	if add, del, _ := f.KernelFlowChanges(); len(add)+len(del) != 0 {
		t.Fatalf("changes twice: %v %v", add, del)
	}

	// A flow handed out (in an earlier batch) and a FIN: taken back.
	process(t, f, ack(c), t0+second)
	process(t, f, fin(c), t0+second)
	add, del, _ = f.KernelFlowChanges()
	if len(add) != 0 || len(del) != 1 || del[0].Client != c {
		t.Fatalf("ACK then FIN: add %v del %v", add, del)
	}
	handed(0, "taken back")
	// Handed out and taken back in one batch: the removal cancels the
	// add, which the caller would otherwise write after it.
	c2 := client(1, 40001)
	process(t, f, syn(c2), t0)
	process(t, f, ack(c2), t0)
	f.KernelFlowChanges()
	process(t, f, ack(c2), t0+second) // handed out
	process(t, f, fin(c2), t0+second) // taken back
	add, del, _ = f.KernelFlowChanges()
	if len(add) != 0 || len(del) != 1 || del[0].Client != c2 {
		t.Fatalf("handed out and taken back in one batch: add %v del %v, want only the removal", add, del)
	}
	handed(0, "handed out and taken back in one batch")

	// IPv6 too, once established, as itself (no IPv4 mapping).
	c6 := netip.AddrPortFrom(netip.MustParseAddr("2001:2::1:1"), 999)
	web6 := netip.AddrPortFrom(vip6, 80)
	process(t, f, framegen.TCP(toDir, c6, web6, "S", 1, 0, nil), t0)
	process(t, f, framegen.TCP(toDir, c6, web6, "A", 2, 1, nil), t0)
	f.KernelFlowChanges()
	process(t, f, framegen.TCP(toDir, c6, web6, "A", 2, 1, nil), t0)
	if add, _, _ := f.KernelFlowChanges(); len(add) != 1 || add[0].Client != c6 || add[0].VIP != web6 || add[0].Proto != protoTCP {
		t.Fatalf("an established IPv6 connection: add %v, want %v -> %v", add, c6, web6)
	}
	handed(1, "an IPv6 flow")
	// UDP is handed out from its second frame.
	u := framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("q"))
	process(t, f, u, t0)
	if add, _, _ := f.KernelFlowChanges(); len(add) != 0 {
		t.Fatalf("a UDP flow's first frame handed out: %v", add)
	}
	process(t, f, u, t0)
	if add, _, _ := f.KernelFlowChanges(); len(add) != 1 || add[0].Proto != protoUDP {
		t.Fatalf("UDP's second frame: %v", add)
	}
	// The UDP and IPv6 entries expire: taken back.
	f.Tick(t0+int64(time.Hour), 1<<20)
	_, del, _ = f.KernelFlowChanges()
	slices.SortFunc(del, func(a, b KernelFlowKey) int { return int(a.Proto) - int(b.Proto) })
	if len(del) != 2 || del[0].Client != c6 || del[1].Proto != protoUDP {
		t.Fatalf("expiry: del %v, want the IPv6 connection and the UDP flow", del)
	}
	handed(0, "expired")
}

// TestKernelFlowsLost: more removals than fit between two calls are
// reported lost, so that the caller turns the kernel's forwarding off.
func TestKernelFlowsLost(t *testing.T) {
	cfg := testConfig("rr", 3)
	cfg.MaxConns = 2 * kernelFlowRemovals
	f := newForwarder(t, cfg, Options{})
	f.EnableKernelFlows()
	for i := range kernelFlowRemovals + 10 {
		u := framegen.UDP(toDir, client(i%200, uint16(1000+i/200)), netip.AddrPortFrom(vip, 53), []byte("q"))
		f.Process(u, &Meta{Time: t0})
		f.Process(u, &Meta{Time: t0})
		f.KernelFlowChanges()
	}
	f.Tick(t0+int64(time.Hour), 1<<20)
	if _, del, lost := f.KernelFlowChanges(); len(del) != kernelFlowRemovals || !lost {
		t.Fatalf("%d removals, lost %v; want %d and lost", len(del), lost, kernelFlowRemovals)
	}
	if _, del, lost := f.KernelFlowChanges(); len(del) != 0 || lost {
		t.Fatalf("lost twice")
	}
}

// TestKernelServers lists the servers the fast path forwards to, by MAC,
// and counts what the kernel forwarded for them.
func TestKernelServers(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	if n := len(f.KernelServers(t0)); n != 9 {
		t.Fatalf("%d servers, want 3 per service", n)
	}
	if err := f.SetAvailable(0, 1, false); err != nil {
		t.Fatal(err)
	}
	servers := f.KernelServers(t0)
	if len(servers) != 8 {
		t.Fatalf("%d servers with one down, want 8", len(servers))
	}
	for _, s := range servers {
		if s.ID>>16 == 0 && s.MAC == [6]byte(rsMACs[1]) {
			t.Fatalf("the failed server is listed: %+v", s)
		}
	}
	id := servers[0].ID
	f.NoteKernelForwarded(id, 5, 500)
	f.NoteKernelForwarded(1<<31, 1, 1) // no such server
	st := f.Stats()
	var p, b uint64
	for _, s := range st {
		for _, r := range s.RealServers {
			p, b = p+r.Packets, b+r.Bytes
		}
	}
	if p != 5 || b != 500 || f.KernelForwarded() != 5 || f.Count(ReasonExisting) != 5 {
		t.Fatalf("noted 5 frames, 500 bytes: stats %d/%d, kernel %d, existing %d", p, b, f.KernelForwarded(), f.Count(ReasonExisting))
	}
}

// TestKernelFlowsNoAllocations: handing out and taking back allocate
// nothing.
func TestKernelFlowsNoAllocations(t *testing.T) {
	f := newForwarder(t, testConfig("wrr", 3), Options{})
	f.EnableKernelFlows()
	c := client(0, 1000)
	f.Process(syn(c), &Meta{Time: t0})
	f.Process(ack(c), &Meta{Time: t0})
	a, fn := ack(c), fin(c)
	buf := make([]byte, len(a))
	m := &Meta{Time: t0}
	if n := testing.AllocsPerRun(1000, func() {
		copy(buf, a)
		f.Process(buf, m)
		f.KernelFlowChanges()
	}); n != 0 {
		t.Errorf("handing out: %v allocs per frame", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		copy(buf, a)
		f.Process(buf, m)
		copy(buf, fn)
		f.Process(buf, m)
		f.KernelFlowChanges()
	}); n != 0 {
		t.Errorf("taking back: %v allocs per frame", n)
	}
}

// TestKernelFlowsTimeout: an entry handed out lives a Refresh longer
// than the timeout after the last frame drlb saw, since the flow's last
// frame may have gone through the kernel up to a Refresh later.
func TestKernelFlowsTimeout(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := testConfig("rr", 3)
		cfg.Timeouts.UDP = 20 * time.Second
		f := newForwarder(t, cfg, Options{})
		if on {
			f.EnableKernelFlows()
		}
		u := framegen.UDP(toDir, client(0, 7), netip.AddrPortFrom(vip, 53), []byte("q"))
		process(t, f, u, t0)
		process(t, f, u, t0) // handed out with kernel flows
		res, _ := process(t, f, u, t0+int64(20500*time.Millisecond))
		if want := map[bool]Reason{false: ReasonNew, true: ReasonExisting}[on]; res.Reason != want {
			t.Fatalf("kernel flows %v: 20.5 s after the last frame %v, want %v", on, res.Reason, want)
		}
	}
}

// TestKernelFlowsTakenBack: a flow handed out is taken back when a
// peer's sync record moves its entry on (the kernel must not keep
// forwarding a connection the peer saw close); a flow never handed out
// costs no removal when its entry expires.
func TestKernelFlowsTakenBack(t *testing.T) {
	a := newForwarder(t, testConfig("rr", 3), Options{})
	b := newForwarder(t, testConfig("rr", 3), Options{})
	a.EnableSync(64)
	b.EnableSync(64)
	a.EnableKernelFlows()
	c := client(0, 40000)
	for _, fr := range [][]byte{syn(c), ack(c), ack(c)} {
		process(t, a, fr, t0)
		process(t, b, fr, t0)
	}
	if add, _, _ := a.KernelFlowChanges(); len(add) != 1 {
		t.Fatalf("handed out %v, want the one flow", add)
	}
	take(a)
	take(b)
	// A peer's record in the same state (a refresh: its timeout, not
	// the kernel's Refresh): taken back all the same, handed out again
	// with the next frame.
	same := toEntry(&SyncEvent{Key: a.tableKey(c), Op: connsync.OpUpsert, State: stateEstablished, SvcPort: 80,
		Real: netip.AddrFrom4([4]byte{198, 18, 0, 11}), Timeout: time.Minute})
	if r := a.ApplySync(&same, t0); r != SyncApplied {
		t.Fatalf("apply the same state: %v", SyncResultNames[r])
	}
	if _, del, _ := a.KernelFlowChanges(); len(del) != 1 || del[0].Client != c {
		t.Fatalf("after a peer's record in the same state: del %v, want the flow", del)
	}
	process(t, a, ack(c), t0)
	if add, _, _ := a.KernelFlowChanges(); len(add) != 1 {
		t.Fatalf("not handed out again: %v", add)
	}
	take(a)
	process(t, b, fin(c), t0+second) // b sees the FIN
	evs := take(b)
	if len(evs) != 1 {
		t.Fatalf("b's events after the FIN: %+v", evs)
	}
	e := toEntry(&evs[0])
	if r := a.ApplySync(&e, t0+second); r != SyncApplied {
		t.Fatalf("apply: %v", SyncResultNames[r])
	}
	if _, del, _ := a.KernelFlowChanges(); len(del) != 1 || del[0].Client != c {
		t.Fatalf("after the peer's FIN_WAIT: del %v, want the flow", del)
	}
	// Expiry now costs nothing more: the flow was taken back.
	a.Tick(t0+int64(time.Hour), 1<<20)
	if _, del, _ := a.KernelFlowChanges(); len(del) != 0 {
		t.Fatalf("expiry after the take-back: del %v", del)
	}

	// Never handed out (a connection that never got past its handshake,
	// a one-frame UDP exchange): no removal when it expires.
	g := newForwarder(t, testConfig("rr", 3), Options{})
	g.EnableKernelFlows()
	process(t, g, syn(client(1, 1)), t0)
	process(t, g, ack(client(1, 1)), t0)
	process(t, g, framegen.UDP(toDir, client(2, 2), netip.AddrPortFrom(vip, 53), []byte("q")), t0)
	g.Tick(t0+int64(time.Hour), 1<<20)
	if add, del, _ := g.KernelFlowChanges(); len(add)+len(del) != 0 {
		t.Fatalf("flows never handed out: add %v del %v", add, del)
	}
}

// TestChanges: a control method or a swap leaves a token, coalesced.
func TestChanges(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	select {
	case <-f.Changes():
		t.Fatal("a change token before any change")
	default:
	}
	for _, change := range []func() error{
		func() error { return f.SetAvailable(0, 1, false) },
		func() error { return f.SetWeight(0, 1, 3) },
		func() error { return f.SetInhibited(0, 2, true) },
		func() error { return f.SetMAC(netip.MustParseAddr("198.18.0.11"), rsMACs[2]) },
		func() error {
			_, err := f.Apply(cfgOf(svc(config.TCP, 80, "wrr", rsAt(1, 1), rsAt(2, 1))), t0, nil)
			return err
		},
	} {
		if err := change(); err != nil {
			t.Fatal(err)
		}
		_ = f.SetAvailable(0, 0, true) // a second change: one token for both
		select {
		case <-f.Changes():
		default:
			t.Fatal("no change token after a change")
		}
		select {
		case <-f.Changes():
			t.Fatal("two tokens for two changes in a row")
		default:
		}
	}
}

// TestKernelFlowsShortenedTimeout: a reload that shortens the timeouts
// after a flow was handed out (the kernel keeps the Refresh it got then,
// up to 5 s): the entry still outlives the flow's frames by that Refresh,
// so frames that pass through the kernel do not let it expire.
func TestKernelFlowsShortenedTimeout(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	f.EnableKernelFlows()
	c := client(0, 40000)
	process(t, f, syn(c), t0)
	process(t, f, ack(c), t0)
	process(t, f, ack(c), t0) // handed out, Refresh 5 s (established: 900 s)
	if add, _, _ := f.KernelFlowChanges(); len(add) != 1 || add[0].Refresh != kernelFlowRefreshMax {
		t.Fatalf("handed out %v", add)
	}
	short := testConfig("rr", 3)
	short.Timeouts.TCPEstablished = 2 * time.Second
	for i := range short.Services {
		short.Services[i].PersistenceBits = short.Services[i].VIP.BitLen() // what config fills in
	}
	if _, err := f.Apply(short, t0, nil); err != nil {
		t.Fatal(err)
	}
	// drlb's next frame of the flow (the kernel's refresh), then the
	// kernel forwards the rest for up to 5 s: at 4.9 s the entry lives.
	process(t, f, ack(c), t0+second)
	res, _ := process(t, f, ack(c), t0+second+int64(4900*time.Millisecond))
	expect(t, res, Forward, ReasonExisting)
}

// tableKey is the connection key of client c to VIP:80 over TCP.
func (f *Forwarder) tableKey(c netip.AddrPort) conntable.Key {
	return conntable.Key{CIP: c.Addr().As16(), VIP: vip.As16(), CPort: c.Port(), VPort: 80, Proto: protoTCP, Kind: conntable.KindConn}
}

// TestChangesEveryWorker: each worker's follower keeps its own copy of
// the servers in the kernel, so a change leaves a token on every
// worker's Changes, not on one of them.
func TestChangesEveryWorker(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{Workers: 3})
	if err := f.SetAvailable(0, 1, false); err != nil {
		t.Fatal(err)
	}
	for i, w := range f.Workers() {
		select {
		case <-w.Changes():
		default:
			t.Errorf("worker %d: no change token after a change", i)
		}
	}
}

// TestKernelFlowsOutCount: KernelFlowsOut always equals the entries
// marked as handed out, through a random mix of handshakes, data, FINs,
// RSTs, UDP, expiries and a peer's sync records, on both families.
func TestKernelFlowsOutCount(t *testing.T) {
	cfg := testConfig("rr", 3)
	cfg.MaxConns = 4096
	f := newForwarder(t, cfg, Options{})
	f.EnableKernelFlows()
	r := rand.New(rand.NewPCG(7, 14))
	now := t0
	marked := func() (n int64) {
		f.table.Range(func(e *conntable.Entry) bool {
			if e.Flags&flagKernel != 0 {
				n++
			}
			return true
		})
		return n
	}
	web6 := netip.AddrPortFrom(vip6, 80)
	for i := range 5000 {
		c := client(r.IntN(150), uint16(1000+r.IntN(4)))
		c6 := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(r.IntN(100))}), uint16(1000+r.IntN(4)))
		var frame []byte
		switch r.IntN(11) {
		case 9, 10: // a peer's record: the connection established on a server, or ended
			e := connsync.Entry{Op: connsync.OpUpsert, Proto: protoTCP, Kind: conntable.KindConn, State: stateEstablished,
				CIP: c.Addr(), VIP: vip, CPort: c.Port(), VPort: 80, SvcPort: 80,
				Real: cfg.Services[0].RealServers[r.IntN(3)].Address, Timeout: time.Minute}
			if r.IntN(2) == 0 {
				e.Op = connsync.OpEnd
			}
			f.ApplySync(&e, now)
		case 0:
			frame = syn(c)
		case 1, 2, 3:
			frame = ack(c)
		case 4:
			frame = fin(c)
		case 5:
			frame = framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "R", 2, 0, nil)
		case 6:
			frame = framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("q"))
		case 7:
			frame = framegen.TCP(toDir, c6, web6, "S", 1, 0, nil)
		case 8:
			frame = framegen.TCP(toDir, c6, web6, "A", 2, 1, nil)
		}
		if frame != nil {
			f.Process(frame, &Meta{Time: now})
		}
		f.KernelFlowChanges()
		now += int64(r.IntN(3000)) * int64(time.Millisecond)
		if i%50 == 0 {
			f.Tick(now, 1<<12)
			f.KernelFlowChanges()
		}
		if got, want := f.KernelFlowsOut(), marked(); got != want {
			t.Fatalf("after step %d: KernelFlowsOut %d, marked entries %d", i, got, want)
		}
	}
	if f.KernelFlowsOut() == 0 {
		t.Error("no flow out at the end: the mix never handed any out")
	}
}

// TestKernelFlowsDisabled: once the director turned kernel flows off
// after a failed write (DisableKernelFlows), nothing more is handed out,
// no flow counts as the kernel's (KernelFlowsOut 0, where it went on
// growing), entries get no extra refresh, and flows handed out before
// leave without being counted down below 0 or collected.
func TestKernelFlowsDisabled(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	f.EnableKernelFlows()
	udp := func(i int) []byte {
		return framegen.UDP(toDir, client(i, 1000), netip.AddrPortFrom(vip, 53), []byte("q"))
	}
	for i := range 10 {
		f.Process(udp(i), &Meta{Time: t0})
		f.Process(udp(i), &Meta{Time: t0})
	}
	if add, _, _ := f.KernelFlowChanges(); len(add) == 0 || f.KernelFlowsOut() == 0 {
		t.Fatalf("%d flows handed out, %d out: the flows were not handed out to start with", len(add), f.KernelFlowsOut())
	}
	f.DisableKernelFlows()
	if n := f.KernelFlowsOut(); n != 0 {
		t.Errorf("%d flows out once disabled, want 0", n)
	}
	for i := range 20 {
		f.Process(udp(i), &Meta{Time: t0 + second})
		f.Process(udp(i), &Meta{Time: t0 + second})
	}
	f.Tick(t0+int64(time.Hour), 1<<20) // every flow leaves
	add, del, lost := f.KernelFlowChanges()
	if n := f.KernelFlowsOut(); len(add)+len(del) != 0 || lost || n != 0 {
		t.Errorf("after DisableKernelFlows: %d handed out, %d taken back, lost %v, %d out; want nothing", len(add), len(del), lost, n)
	}
}

// TestDrainPending: a quiesced server's drain deadline is pending until
// it passes (KernelServers drops the server then, with no Changes token),
// and none is pending without a drain timeout or once the weight is back.
func TestDrainPending(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	a.Services[0].DrainTimeout = 10 * time.Second
	f := newForwarder(t, a, Options{})
	if f.DrainPending(t0) {
		t.Fatal("a drain is pending with every weight up")
	}
	b := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 0), rsAt(2, 1)))
	b.Services[0].DrainTimeout = 10 * time.Second
	applyNow(t, f, b, t0)
	for _, tc := range []struct {
		at   int64
		want bool
	}{{t0, true}, {t0 + 9*second, true}, {t0 + 10*second, false}, {t0 + 11*second, false}} {
		if got := f.DrainPending(tc.at); got != tc.want {
			t.Errorf("%ds after quiescing: DrainPending %v, want %v", (tc.at-t0)/second, got, tc.want)
		}
	}
	applyNow(t, f, a, t0+second)
	if f.DrainPending(t0 + second) {
		t.Fatal("a drain is pending after the weight came back")
	}
}
