package director

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var syncKey = []byte("a shared secret of 32 bytes.....")

// fakeNet carries sync datagrams between in-memory directors; it keeps
// every datagram it delivered, for replays.
type fakeNet struct {
	mu    sync.Mutex
	conns map[netip.Addr]*fakeSync
	log   []datagram // what was sent, to: the destination
}

type datagram struct {
	b        []byte
	from, to netip.AddrPort
}

type fakeSync struct {
	n      *fakeNet
	self   netip.Addr
	in     chan datagram
	once   sync.Once
	closed chan struct{}
}

func (n *fakeNet) conn(self netip.Addr) *fakeSync {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = map[netip.Addr]*fakeSync{}
	}
	c := &fakeSync{n: n, self: self, in: make(chan datagram, 4096), closed: make(chan struct{})}
	n.conns[self] = c
	return c
}

// inject delivers b to to as if from from.
func (n *fakeNet) inject(b []byte, from netip.AddrPort, to netip.Addr) {
	n.mu.Lock()
	c := n.conns[to]
	n.mu.Unlock()
	if c != nil {
		select {
		case c.in <- datagram{b: bytes.Clone(b), from: from}:
		default:
		}
	}
}

func (c *fakeSync) WriteTo(b []byte, to netip.AddrPort) error {
	c.n.mu.Lock()
	c.n.log = append(c.n.log, datagram{bytes.Clone(b), netip.AddrPortFrom(c.self, connsync.Port), to})
	c.n.mu.Unlock()
	c.n.inject(b, netip.AddrPortFrom(c.self, connsync.Port), to.Addr())
	return nil
}

func (c *fakeSync) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), d.from, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, errors.New("closed")
	}
}

func (c *fakeSync) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

func syncConfig(peers ...netip.Addr) *config.Config {
	cfg := configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC), realAt(2, 1, rs2MAC), realAt(3, 1, rs3MAC)))
	cfg.HA = &config.HA{VRID: 51, Priority: 100, AdvertInterval: 50 * time.Millisecond, Preempt: true,
		Sync: &config.HASync{Peers: peers, KeyFile: "unused"}}
	return cfg
}

// syncDirector runs a director with sync on n as self.
func syncDirector(t *testing.T, n *fakeNet, self netip.Addr, peers ...netip.Addr) (*Director, link.Port) {
	t.Helper()
	return syncDirectorWith(t, n, self, syncOpts{}, peers...)
}

// syncOpts change what syncDirector starts (zero: as it is).
type syncOpts struct {
	maxConns    int
	bulkTimeout time.Duration
	logger      *slog.Logger
}

// syncDirectorWith is syncDirector with o.
func syncDirectorWith(t *testing.T, n *fakeNet, self netip.Addr, o syncOpts, peers ...netip.Addr) (*Director, link.Port) {
	t.Helper()
	dirPort, wire := link.Pipe()
	cfg := syncConfig(peers...)
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	d, err := New(cfg, dirPort, Options{IPv4: self, VRRP: newFakeVRRP(), Sync: n.conn(self), SyncKey: syncKey,
		AnnounceCount: 1, AnnounceInterval: time.Millisecond, Logger: o.logger})
	if err != nil {
		t.Fatal(err)
	}
	if o.bulkTimeout > 0 {
		d.sync.bulkTimeout = o.bulkTimeout
	}
	serve(t, d, wire)
	return d, wire
}

// forwardTo sends a client segment to director d and returns the MAC of
// the real server it went to.
func forwardTo(t *testing.T, d *Director, wire link.Port, c netip.AddrPort, flags string) net.HardwareAddr {
	t.Helper()
	f := framegen.TCP(framegen.L2{Src: routerMAC, Dst: d.port.HardwareAddr()}, c, netip.AddrPortFrom(vip, 80), flags, 1, 1, nil)
	send(t, wire, f)
	out := expectFrame(t, wire, "forwarded "+flags, func(p gopacket.Packet) bool {
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		return ok && uint16(tcp.SrcPort) == c.Port()
	})
	return net.HardwareAddr(out[0:6])
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func conns(d *Director) int { return len(d.Snapshot(true).ConnEntries) }

// TestSyncTwoDirectors: rr on two directors. Connections scheduled by
// the first are carried mid-flow by the second, to the same real
// servers: the second copied the first's table in bulk when it started,
// and learned later ones live. Messages signed with another key,
// replayed, or from an unknown address change nothing and are counted.
func TestSyncTwoDirectors(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	d1, w1 := syncDirector(t, &n, a1, a1, a2) // one peer list for both: each skips itself
	var before []net.HardwareAddr
	for i := 0; i < 3; i++ {
		before = append(before, forwardTo(t, d1, w1, clientAt(i), "S"))
	}
	d2, w2 := syncDirector(t, &n, a2, a1, a2)
	waitFor(t, "the bulk copy", func() bool { return d2.Snapshot(false).HA.Sync.Bulk == "done" })
	st := d2.Snapshot(false).HA.Sync
	if st.BulkFrom != a1 || st.BulkEntries != 3 || len(st.Peers) != 1 || st.Peers[0] != a1 {
		t.Fatalf("sync status after the bulk copy %+v", st)
	}
	// Live: new connections on d1 reach d2 within milliseconds.
	for i := 3; i < 6; i++ {
		before = append(before, forwardTo(t, d1, w1, clientAt(i), "S"))
	}
	waitFor(t, "6 entries on director 2", func() bool { return conns(d2) == 6 })
	// rr on d2 alone would start with the first server for every flow
	// it never saw: it must follow d1's choices.
	for i := range 6 {
		if got := forwardTo(t, d2, w2, clientAt(i), "A"); got.String() != before[i].String() {
			t.Errorf("flow %d: director 2 sent it to %v, director 1 to %v", i, got, before[i])
		}
	}
	// d2's state changes (ESTABLISHED) go back to d1.
	waitFor(t, "director 1 sees the flows established", func() bool {
		est := 0
		for _, c := range d1.Snapshot(true).ConnEntries {
			if c.State == "ESTABLISHED" {
				est++
			}
		}
		return est == 6
	})
	snap := d2.Snapshot(false)
	active := 0
	for _, r := range snap.Services[0].RealServers {
		active += r.Active
	}
	if active != 6 {
		t.Errorf("director 2 counts %d active connections, want 6", active)
	}

	// Another key, a replay, an unknown sender: nothing changes, counted.
	var replay []byte
	n.mu.Lock()
	for _, d := range n.log {
		if d.from.Addr() == a1 && d.to.Addr() == a2 {
			replay = d.b
		}
	}
	n.mu.Unlock()
	other, _ := connsync.NewCodec([]byte("not the key the directors share"))
	h := connsync.Header{Type: connsync.TypeUpdate, Sender: a1, Epoch: uint64(time.Now().UnixNano()), Seq: 1, Time: time.Now().UnixNano()}
	b := connsync.AppendHeader(nil, &h)
	b, _ = connsync.AppendEntry(b, &connsync.Entry{Op: connsync.OpEnd, Proto: 6, CIP: clientAt(0).Addr(), VIP: vip, CPort: clientAt(0).Port(),
		VPort: 80, SvcPort: 80, Real: realAt(1, 1, nil).Address})
	forged := other.Seal(b)
	n.inject(forged, netip.AddrPortFrom(a1, connsync.Port), a2)
	n.inject(replay, netip.AddrPortFrom(a1, connsync.Port), a2)
	n.inject(replay, netip.AddrPortFrom(netip.MustParseAddr("198.18.0.9"), connsync.Port), a2)
	waitFor(t, "rejections counted", func() bool {
		s := d2.Snapshot(false).HA.Sync.Rejected
		return s["bad_mac"] == 1 && s["unknown_peer"] == 1 && s["replay"] == 1
	})
	if c := conns(d2); c != 6 {
		t.Errorf("director 2 holds %d entries after the forged end, want 6", c)
	}
	var line strings.Builder
	control.WriteHA(&line, d2.Snapshot(false))
	if !strings.Contains(line.String(), "Sync peers 198.18.0.2 bulk done (198.18.0.2, 3 entries") || !strings.Contains(line.String(), "rejected") {
		t.Errorf("ctl lines:\n%s", line.String())
	}
	t.Logf("director 2:\n%s", line.String())
}

// Sync is refused without a socket, a key long enough, or a peer.
func TestSyncRefused(t *testing.T) {
	self := netip.MustParseAddr("198.18.0.2")
	p, _ := link.Pipe()
	var n fakeNet
	cases := map[string]struct {
		opts  Options
		peers []netip.Addr
		want  string
	}{
		"no socket":      {Options{IPv4: self, VRRP: newFakeVRRP(), SyncKey: syncKey}, []netip.Addr{netip.MustParseAddr("198.18.0.3")}, "sync socket"},
		"short key":      {Options{IPv4: self, VRRP: newFakeVRRP(), Sync: n.conn(self), SyncKey: []byte("short")}, []netip.Addr{netip.MustParseAddr("198.18.0.3")}, "key too short"},
		"only ourselves": {Options{IPv4: self, VRRP: newFakeVRRP(), Sync: n.conn(self), SyncKey: syncKey}, []netip.Addr{self}, "no peer"},
	}
	for name, tc := range cases {
		if _, err := New(syncConfig(tc.peers...), p, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"empty": "", "short": "0123456789\n"} {
		path := filepath.Join(dir, name)
		_ = os.WriteFile(path, []byte(content), 0o600)
		if _, err := ReadSyncKey(path); err == nil {
			t.Errorf("key file %s accepted", name)
		}
	}
	if _, err := ReadSyncKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing key file accepted")
	}
	// An endless file (key_file: /dev/zero by mistake) is refused, not
	// read until memory runs out.
	if _, err := ReadSyncKey("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a key") {
		t.Errorf("key file /dev/zero: %v, want refused as not a key", err)
	}
	path := filepath.Join(dir, "good")
	_ = os.WriteFile(path, append(syncKey, '\n'), 0o600)
	if k, err := ReadSyncKey(path); err != nil || !bytes.Equal(k, syncKey) {
		t.Errorf("good key: %q %v", k, err)
	}
}

// TestSyncRecordBeforeFrame: a new connection's record leaves for the
// peers before its SYN leaves for the real server, every time: a master
// killed once it forwarded the SYN has told the backup already (with
// the record queued for a sender goroutine instead, a kill in between
// left the backup without it; seen once in CI, TestHASyncFailover).
func TestSyncRecordBeforeFrame(t *testing.T) {
	var n fakeNet
	self, peer := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	d, wire := syncDirector(t, &n, self, self, peer)
	codec, err := connsync.NewCodec(syncKey)
	if err != nil {
		t.Fatal(err)
	}
	// sent reports whether a record for c went to the peer.
	sent := func(c netip.AddrPort) bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, dg := range n.log {
			h, payload, err := codec.Open(bytes.Clone(dg.b))
			if err != nil || h.Type != connsync.TypeUpdate || dg.to.Addr() != peer {
				continue
			}
			for i := range h.Count {
				if e, ok := connsync.EntryAt(payload, i); ok && e.CIP == c.Addr() && e.CPort == c.Port() {
					return true
				}
			}
		}
		return false
	}
	for i := range 50 {
		c := netip.AddrPortFrom(netip.MustParseAddr("198.18.1.10"), uint16(20000+i))
		forwardTo(t, d, wire, c, "S") // returns once the SYN is on the wire
		if !sent(c) {
			t.Fatalf("connection %d: its SYN was forwarded before its record was sent", i)
		}
	}
}

// discardSync is a sync socket that sends nowhere.
type discardSync struct{}

func (discardSync) WriteTo([]byte, netip.AddrPort) error { return nil }
func (discardSync) ReadFrom([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, net.ErrClosed
}
func (discardSync) Close() error { return nil }

// TestSyncUpdatesNoAllocations: a worker packing and sending its batch's
// records (on the data path since they go before the frames) allocates
// nothing, a full datagram's worth and more included.
func TestSyncUpdatesNoAllocations(t *testing.T) {
	d := &Director{log: slog.New(slog.DiscardHandler)}
	r, err := newSync(d, &config.HASync{Peers: []netip.Addr{netip.MustParseAddr("198.18.0.3")}}, discardSync{}, syncKey, netip.MustParseAddr("198.18.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	p := r.updates()
	evs := make([]forwarder.SyncEvent, 100) // more than a datagram holds
	for i := range evs {
		evs[i] = forwarder.SyncEvent{Op: connsync.OpUpsert, State: 3, Real: netip.MustParseAddr("198.18.0.11"), Timeout: time.Minute}
		evs[i].Key.CPort = uint16(i)
	}
	if n := testing.AllocsPerRun(100, func() { p.addAll(evs); p.flush() }); n != 0 {
		t.Errorf("%v allocations per batch", n)
	}
	if r.sent.Load() == 0 {
		t.Error("nothing sent")
	}
}

// orderSync records the sequence numbers of what it sends, in order.
type orderSync struct {
	discardSync
	mu    sync.Mutex
	codec *connsync.Codec
	seqs  []uint64
	bad   int
}

func (o *orderSync) WriteTo(b []byte, _ netip.AddrPort) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	h, _, err := o.codec.Open(bytes.Clone(b))
	if err != nil {
		o.bad++
		return nil
	}
	o.seqs = append(o.seqs, h.Seq)
	return nil
}

// TestSyncPackersInOrder: workers filling datagrams side by side send
// them in the order of their numbers (a bulk answer's packer goes
// through the same flush), so the peer's
// replay window accepts every one. Numbered when started, as before, a
// datagram could leave after 64 newer ones and be rejected: a review saw
// 4-24 of 40,000 lost with two workers.
func TestSyncPackersInOrder(t *testing.T) {
	codec, err := connsync.NewCodec(syncKey)
	if err != nil {
		t.Fatal(err)
	}
	conn := &orderSync{codec: codec}
	d := &Director{log: slog.New(slog.DiscardHandler)}
	r, err := newSync(d, &config.HASync{Peers: []netip.Addr{netip.MustParseAddr("198.18.0.3")}}, conn, syncKey, netip.MustParseAddr("198.18.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]forwarder.SyncEvent, 64)
	for i := range evs {
		evs[i] = forwarder.SyncEvent{Op: connsync.OpUpsert, State: 3, Real: netip.MustParseAddr("198.18.0.11"), Timeout: time.Minute}
	}
	const packers, batches = 6, 300
	var wg sync.WaitGroup
	for range packers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := r.updates()
			for range batches {
				p.addAll(evs)
				p.flush()
			}
		}()
	}
	wg.Wait()
	if conn.bad != 0 {
		t.Fatalf("%d datagrams did not open", conn.bad)
	}
	var w connsync.Window
	now := time.Now().UnixNano()
	for i, seq := range conn.seqs {
		if i > 0 && seq <= conn.seqs[i-1] {
			t.Fatalf("datagram %d numbered %d after %d", i, seq, conn.seqs[i-1])
		}
		h := connsync.Header{Epoch: r.epoch, Seq: seq, Time: now}
		if !w.Check(&h, now) {
			t.Fatalf("datagram %d (number %d) rejected as a replay", i, seq)
		}
	}
	if want := packers * batches * 4; len(conn.seqs) != want { // 64 events: 3 full datagrams and the rest
		t.Errorf("%d datagrams, want %d", len(conn.seqs), want)
	}
}

// TestBulkAgain: asked for another bulk copy (the link came back), the
// director holds preemption, and the answer to a request of an earlier
// wait does not release it, since what the link lost may be missing from
// it: only the answer to the latest request does, once.
func TestBulkAgain(t *testing.T) {
	var held []bool
	peer := netip.MustParseAddr("198.18.0.2")
	newRun := func() *syncRun {
		return &syncRun{log: slog.New(slog.DiscardHandler), bulkState: "waiting", bulkDone: make(chan struct{}),
			again: make(chan struct{}, 1), hold: func(h bool) { held = append(held, h) }}
	}
	r := newRun()
	first := r.bulkDone
	r.bulkAgain()
	if r.bulkState != "waiting" || r.bulkDone == first || r.bulkGen != 1 || len(held) != 1 || !held[0] || len(r.again) != 1 {
		t.Fatalf("after bulkAgain: state %s, new channel %t, wait %d, hold %v, asked again %d",
			r.bulkState, r.bulkDone != first, r.bulkGen, held, len(r.again))
	}
	// The answer to the first request (wait 0) ends: ignored.
	r.bulkFinished(peer, 10, connsync.BulkEnd{Request: 0, HasRequest: true})
	if r.bulkState != "waiting" || len(held) != 1 {
		t.Fatalf("the answer to an earlier request counted: state %s, hold %v", r.bulkState, held)
	}
	// The answer to the latest request: done, preemption let go.
	r.bulkFinished(peer, 12, connsync.BulkEnd{Request: 1, HasRequest: true})
	if r.bulkState != "done" || r.bulkEntries != 12 || len(held) != 2 || held[1] {
		t.Fatalf("the latest answer: state %s, %d entries, hold %v", r.bulkState, r.bulkEntries, held)
	}
	select {
	case <-r.bulkDone:
	default:
		t.Fatal("the wait's channel is not closed")
	}
	// A wake-up left by a second bulkAgain finds the copy in and asks
	// for nothing (r has no socket: a request would panic).
	r.requestBulk(context.Background())

	// A peer that sends no request numbers: its copy counts.
	held = nil
	old := newRun()
	old.bulkAgain()
	old.bulkFinished(peer, 3, connsync.BulkEnd{})
	if old.bulkState != "done" || len(held) != 2 || held[1] {
		t.Fatalf("a copy without a request number: state %s, hold %v", old.bulkState, held)
	}
}

// TestBulkAgainWaitsAfresh: asked again while a wait is under way (a
// link that came back before the first copy arrived), the director waits
// a whole timeout from then, not what was left of the first one: the
// first wait's deadline would let preemption go before any copy asked for
// after the link came back could arrive.
func TestBulkAgainWaitsAfresh(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	var mu sync.Mutex
	var held []bool
	r := &syncRun{conn: discardSync{}, key: syncKey, self: netip.MustParseAddr("198.18.0.3"), log: slog.New(slog.DiscardHandler),
		peers: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:8848")}, bulkState: "waiting", bulkDone: make(chan struct{}),
		again: make(chan struct{}, 1), bulkTimeout: timeout, base: time.Now(),
		hold: func(h bool) { mu.Lock(); held = append(held, h); mu.Unlock() }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.requestBulks(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(timeout / 2)
	r.bulkAgain()
	state := func() string { r.bulkMu.Lock(); defer r.bulkMu.Unlock(); return r.bulkState }
	time.Sleep(timeout * 3 / 4) // past the first deadline, before the second
	if s := state(); s != "waiting" {
		t.Fatalf("%v after the second request: %s, want waiting", timeout*3/4, s)
	}
	waitFor(t, "the second wait's timeout", func() bool { return state() == "timeout" })
	mu.Lock()
	defer mu.Unlock()
	if len(held) != 2 || !held[0] || held[1] {
		t.Errorf("preemption held, then let go: %v", held)
	}
}

// fillConns puts n connections to the first real server into d's
// tables, as sync from a peer would (state 3, for a minute).
func fillConns(t *testing.T, d *Director, n int) {
	t.Helper()
	fillSynced(t, d, n, 3, time.Minute)
}

// fillSynced puts n TCP connections in state, clients 198.19.x.y:40000,
// to the first real server into d's tables, as sync from a peer would,
// for timeout.
func fillSynced(t *testing.T, d *Director, n int, state uint8, timeout time.Duration) {
	t.Helper()
	now := d.clock().UnixNano()
	for i := range n {
		e := connsync.Entry{Op: connsync.OpUpsert, Proto: 6, State: state, VIP: vip, VPort: 80, SvcPort: 80, Real: realAt(1, 1, nil).Address,
			CIP: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), CPort: 40000, Timeout: timeout}
		w := d.workerOf(e.CIP)
		w.mu.Lock()
		res := w.fw.ApplySync(&e, now)
		w.mu.Unlock()
		if res != forwarder.SyncApplied {
			t.Fatalf("entry %d: %s", i, forwarder.SyncResultNames[res])
		}
	}
}

// TestBulkCopyLongerThanTimeout: a table that takes longer to send than
// the bulk timeout (a million entries take about 9 s, the timeout is 3 s)
// is copied whole: the director waits while the answer arrives, instead
// of preempting with part of it.
func TestBulkCopyLongerThanTimeout(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	const entries = 60000 // 3000 datagrams (fakeNet holds 4096), paced: over 370 ms
	d1, _ := syncDirectorWith(t, &n, a1, syncOpts{maxConns: 2 * entries}, a1, a2)
	fillConns(t, d1, entries)
	d2, _ := syncDirectorWith(t, &n, a2, syncOpts{maxConns: 2 * entries, bulkTimeout: 150 * time.Millisecond}, a1, a2)
	waitFor(t, "the bulk copy to end", func() bool { return d2.Snapshot(false).HA.Sync.Bulk != "waiting" })
	if st := d2.Snapshot(false).HA.Sync; st.Bulk != "done" || st.BulkEntries != entries {
		t.Fatalf("bulk copy of %d entries with a 150 ms timeout: %s, %d entries in %.0f ms", entries, st.Bulk, st.BulkEntries, st.BulkTook*1000)
	} else {
		t.Logf("%d entries in %.0f ms (timeout 150 ms)", st.BulkEntries, st.BulkTook*1000)
	}
}

// TestBulkRestartedRequester: a director restarted while a peer still
// answers its previous process's bulk request does not take the end of
// that answer (a partial copy) as its own complete one: its waits are
// numbered from its epoch, not from 0 as the previous process's were.
func TestBulkRestartedRequester(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	const entries = 60000
	d1, _ := syncDirectorWith(t, &n, a1, syncOpts{maxConns: 2 * entries}, a1, a2)
	fillConns(t, d1, entries)
	// a2's first process asks (its wait numbered 0, as before) and dies.
	codec, err := connsync.NewCodec(syncKey)
	if err != nil {
		t.Fatal(err)
	}
	h := connsync.Header{Type: connsync.TypeBulkRequest, Sender: a2, Epoch: uint64(time.Now().UnixNano()), Seq: 1, Time: time.Now().UnixNano()}
	b, _ := connsync.AppendRequest(connsync.AppendHeader(nil, &h), 0)
	n.inject(codec.Seal(b), netip.AddrPortFrom(a2, connsync.Port), a1)
	time.Sleep(100 * time.Millisecond)
	d2, _ := syncDirectorWith(t, &n, a2, syncOpts{maxConns: 2 * entries}, a1, a2) // restarted
	waitFor(t, "the bulk wait to end", func() bool { return d2.Snapshot(false).HA.Sync.Bulk != "waiting" })
	if st := d2.Snapshot(false).HA.Sync; st.Bulk == "done" && conns(d2) != entries {
		t.Errorf("bulk done with %d of %d entries: preemption released on a partial copy", conns(d2), entries)
	}
}

// TestApplySyncKeyRotated: a reload reads the sync key file again and
// refuses (restart needed) when it holds another key than the running
// one: the key is taken at start, and a rotated file reloaded as
// "applied" kept the old key until a restart of one director made the
// other reject everything it sent. The same key reloads.
func TestApplySyncKeyRotated(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	file := filepath.Join(t.TempDir(), "sync.key")
	if err := os.WriteFile(file, append(slices.Clone(syncKey), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := syncConfig(a1, a2)
	cfg.HA.Sync.KeyFile = file
	dirPort, wire := link.Pipe()
	defer wire.Close()
	d, err := New(cfg, dirPort, Options{Logger: slog.New(slog.DiscardHandler), IPv4: a1, VRRP: newFakeVRRP(), Sync: n.conn(a1), SyncKey: syncKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(cfg.Clone()); err != nil {
		t.Fatalf("the same key: %v", err)
	}
	if err := os.WriteFile(file, []byte("another shared secret of 32 bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(cfg); !errors.Is(err, ErrRestartNeeded) || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("a rotated key: %v, want ErrRestartNeeded", err)
	}
	// A drlb ctl change (Edit) does not read the file: the next key
	// written ahead of a restart, or the file gone, must not refuse it.
	edit := func(c *config.Config) (*config.Config, error) {
		c.Services[0].RealServers[0].Weight = 2
		return c, nil
	}
	if err := d.Edit(edit); err != nil {
		t.Fatalf("a ctl change with the next key in the file: %v", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := d.Edit(edit); err != nil {
		t.Fatalf("a ctl change with the key file gone: %v", err)
	}
}

// TestSyncMismatchLogged: an entry a peer syncs for a service this
// director does not have is counted and logged once (the directors'
// configurations differ: those connections break on a failover), not
// only counted.
func TestSyncMismatchLogged(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	var logs testutil.SyncBuffer
	r := &syncRun{log: slog.New(slog.NewTextHandler(&logs, nil))}
	e := connsync.Entry{Op: connsync.OpUpsert, Proto: 6, State: 3, VIP: vip, VPort: 8080, SvcPort: 8080, Real: realAt(1, 1, nil).Address,
		CIP: a2, CPort: 40000, Timeout: time.Minute}
	for range 3 {
		r.noteMismatch(a1, &e, forwarder.SyncUnknownService)
	}
	if got := strings.Count(logs.String(), "does not have"); got != 1 {
		t.Fatalf("logged %d times, want once:\n%s", got, logs.String())
	}
}

// TestSyncMismatchLoggedPerService: the connections of a peer's service
// of every port (port 0) this director lacks log one mismatch, not one
// per destination port: keyed by the connection's port, 64 client ports
// filled the bounded log with the one problem, and a second service
// missing was never logged.
func TestSyncMismatchLoggedPerService(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	var logs testutil.SyncBuffer
	r := &syncRun{log: slog.New(slog.NewTextHandler(&logs, nil))}
	e := connsync.Entry{Op: connsync.OpUpsert, Proto: 6, State: 3, VIP: vip, SvcPort: 0, Real: realAt(1, 1, nil).Address,
		CIP: a2, CPort: 40000, Timeout: time.Minute}
	for port := range uint16(2 * maxMismatchLogs) {
		e.VPort = 1000 + port
		r.noteMismatch(a1, &e, forwarder.SyncUnknownService)
	}
	e.VPort, e.SvcPort = 8080, 8080
	r.noteMismatch(a1, &e, forwarder.SyncUnknownService)
	if got := strings.Count(logs.String(), "does not have"); got != 2 {
		t.Fatalf("logged %d times, want once for each of the 2 services:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "vip="+vip.String()+":0 ") {
		t.Errorf("the every-port service not named by its port 0:\n%s", logs.String())
	}
}

// lossySync loses the first Bulk datagram it sends (a frame lost on the
// LAN, or the peer's socket buffer full).
type lossySync struct {
	*fakeSync
	lost atomic.Int32
}

func (c *lossySync) WriteTo(b []byte, to netip.AddrPort) error {
	if len(b) > 5 && b[5] == connsync.TypeBulk && c.lost.Add(1) == 1 {
		return nil
	}
	return c.fakeSync.WriteTo(b, to)
}

// syncDirectorConn is syncDirector on conn.
func syncDirectorConn(t *testing.T, conn connsync.Conn, self netip.Addr, peers ...netip.Addr) (*Director, link.Port) {
	t.Helper()
	dirPort, wire := link.Pipe()
	d, err := New(syncConfig(peers...), dirPort, Options{IPv4: self, VRRP: newFakeVRRP(), Sync: conn, SyncKey: syncKey,
		AnnounceCount: 1, AnnounceInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	return d, wire
}

// TestBulkLostDatagramAskedAgain: a bulk answer one of whose Bulk
// datagrams is lost does not end the wait as done: its BulkDone counts
// the entries sent, fewer arrived, and the director asks again; the
// second answer is whole, and only then is preemption let go. Before,
// BulkDone carried only the request's number, and the first answer
// released preemption with the table lacking those connections.
func TestBulkLostDatagramAskedAgain(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	d1, w1 := syncDirectorConn(t, &lossySync{fakeSync: n.conn(a1)}, a1, a1, a2)
	for i := 0; i < 3; i++ {
		forwardTo(t, d1, w1, clientAt(i), "S")
	}
	d2, _ := syncDirector(t, &n, a2, a1, a2)
	waitFor(t, "the bulk wait to end", func() bool { return d2.Snapshot(false).HA.Sync.Bulk != "waiting" })
	st := d2.Snapshot(false).HA.Sync
	if st.Bulk != "done" || st.BulkEntries != 3 || conns(d2) != 3 {
		t.Errorf("bulk %q from %v with %d entries; director 2 holds %d of director 1's 3 connections", st.Bulk, st.BulkFrom, st.BulkEntries, conns(d2))
	}
}

// TestBulkShortAnswers: an answer that arrived with fewer entries (or
// more: an earlier answer's end lost) than its BulkDone counts keeps the
// wait going, logged, and the next complete one ends it; answers that
// keep arriving short let preemption go after syncBulkAttempts, as
// "incomplete". A BulkDone without the count (a peer of the previous
// release) ends it as before.
func TestBulkShortAnswers(t *testing.T) {
	peer := netip.MustParseAddr("198.18.0.2")
	var logs testutil.SyncBuffer
	var held []bool
	newRun := func() *syncRun {
		r := &syncRun{log: slog.New(slog.NewTextHandler(&logs, nil)), bulkState: "waiting", bulkDone: make(chan struct{}),
			again: make(chan struct{}, 1), hold: func(h bool) { held = append(held, h) }, bulkGen: 7}
		r.hold(true)
		return r
	}
	r := newRun()
	r.bulkFinished(peer, 2, connsync.BulkEnd{Request: 7, HasRequest: true, Entries: 3, HasEntries: true})
	r.bulkFinished(peer, 4, connsync.BulkEnd{Request: 7, HasRequest: true, Entries: 3, HasEntries: true})
	if r.bulkState != "waiting" || len(held) != 1 {
		t.Fatalf("after answers of 2 and 4 entries of 3: %s, hold %v", r.bulkState, held)
	}
	if !strings.Contains(logs.String(), "incomplete") || !strings.Contains(logs.String(), "received=2 sent=3") {
		t.Errorf("the short answer not logged:\n%s", logs.String())
	}
	r.bulkFinished(peer, 3, connsync.BulkEnd{Request: 7, HasRequest: true, Entries: 3, HasEntries: true})
	if r.bulkState != "done" || r.bulkEntries != 3 || len(held) != 2 || held[1] {
		t.Fatalf("a whole answer: %s, %d entries, hold %v", r.bulkState, r.bulkEntries, held)
	}

	held = nil
	r = newRun()
	for i := range syncBulkAttempts {
		if r.bulkState != "waiting" {
			t.Fatalf("released after %d short answers, want %d", i, syncBulkAttempts)
		}
		r.bulkFinished(peer, 1, connsync.BulkEnd{Request: 7, HasRequest: true, Entries: 3, HasEntries: true})
	}
	if r.bulkState != "incomplete" || r.bulkEntries != 1 || len(held) != 2 || held[1] {
		t.Fatalf("after %d short answers: %s, %d entries, hold %v", syncBulkAttempts, r.bulkState, r.bulkEntries, held)
	}

	held = nil
	r = newRun()
	r.bulkFinished(peer, 2, connsync.BulkEnd{Request: 7, HasRequest: true})
	if r.bulkState != "done" || len(held) != 2 || held[1] {
		t.Fatalf("a BulkDone without the count: %s, hold %v", r.bulkState, held)
	}
}

// TestBulkOldPeer: a peer of the previous release (its BulkDone carries
// the request's number and no count; it ignores the count in ours)
// copies its table, and copies this director's, as before.
func TestBulkOldPeer(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	d2, _ := syncDirector(t, &n, a2, a1, a2)
	old := n.conn(a1)
	codec, _ := connsync.NewCodec(syncKey)
	epoch := uint64(time.Now().UnixNano())
	seq := uint64(0)
	send := func(typ uint8, fill func([]byte) []byte) {
		seq++
		h := connsync.Header{Type: typ, Sender: a1, Epoch: epoch, Seq: seq, Time: time.Now().UnixNano()}
		b := fill(connsync.AppendHeader(make([]byte, 0, connsync.MaxDatagram), &h))
		if err := old.WriteTo(codec.Seal(b), netip.AddrPortFrom(a2, connsync.Port)); err != nil {
			t.Fatal(err)
		}
	}
	// The old peer answers d2's request: one entry, then a BulkDone of
	// the request's number alone.
	var id uint64
	waitFor(t, "d2's bulk request", func() bool {
		select {
		case d := <-old.in:
			h, p, err := codec.Open(d.b)
			if err == nil && h.Type == connsync.TypeBulkRequest {
				id, _ = connsync.RequestOf(p)
				return true
			}
		default:
		}
		return false
	})
	e := connsync.Entry{Op: connsync.OpUpsert, Proto: 6, State: 3, VIP: vip, VPort: 80, SvcPort: 80, Real: realAt(1, 1, nil).Address,
		CIP: netip.MustParseAddr("198.19.0.1"), CPort: 40000, Timeout: time.Minute}
	send(connsync.TypeBulk, func(b []byte) []byte { b, _ = connsync.AppendEntry(b, &e); return b })
	send(connsync.TypeBulkDone, func(b []byte) []byte { b, _ = connsync.AppendRequest(b, id); return b })
	waitFor(t, "the bulk wait to end", func() bool { return d2.Snapshot(false).HA.Sync.Bulk != "waiting" })
	if st := d2.Snapshot(false).HA.Sync; st.Bulk != "done" || st.BulkEntries != 1 {
		t.Fatalf("an old peer's copy: %s, %d entries", st.Bulk, st.BulkEntries)
	}
	// d2 answers the old peer's request; the old peer reads its
	// BulkDone's number as before (RequestOf).
	send(connsync.TypeBulkRequest, func(b []byte) []byte { b, _ = connsync.AppendRequest(b, 42); return b })
	waitFor(t, "d2's BulkDone", func() bool {
		select {
		case d := <-old.in:
			h, p, err := codec.Open(d.b)
			if err == nil && h.Type == connsync.TypeBulkDone {
				if got, ok := connsync.RequestOf(p); !ok || got != 42 {
					t.Fatalf("the old peer reads request %d, %t from the BulkDone, want 42", got, ok)
				}
				return true
			}
		default:
		}
		return false
	})
}

// TestBulkKeyMismatchHolds: while messages from a configured peer fail
// the MAC (its key differs: a rotation half done), the director keeps
// holding preemption past the bulk timeout, since that peer's table is
// missing, not empty; once they stop it times out as before. Before,
// such messages counted as silence, and preemption was let go after 3 s
// with an empty table.
func TestBulkKeyMismatchHolds(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	const timeout = 150 * time.Millisecond
	d2, _ := syncDirectorWith(t, &n, a2, syncOpts{bulkTimeout: timeout}, a1, a2)
	other, _ := connsync.NewCodec([]byte("another shared secret of 32 bytes"))
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for seq := uint64(1); ; seq++ {
			h := connsync.Header{Type: connsync.TypeUpdate, Sender: a1, Epoch: 1, Seq: seq, Time: time.Now().UnixNano()}
			n.inject(other.Seal(connsync.AppendHeader(nil, &h)), netip.AddrPortFrom(a1, connsync.Port), a2)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	time.Sleep(4 * timeout)
	st := d2.Snapshot(false).HA.Sync
	close(stop)
	<-sent
	if st.Bulk != "waiting" {
		t.Fatalf("after %v of a peer's messages failing the MAC (timeout %v): bulk %s, want waiting", 4*timeout, timeout, st.Bulk)
	}
	if st.Rejected["bad_mac"] == 0 {
		t.Fatal("no message rejected for its MAC")
	}
	waitFor(t, "the wait to time out once they stop", func() bool { return d2.Snapshot(false).HA.Sync.Bulk == "timeout" })
}

// cappedSync reports a receive buffer net.core.rmem_max capped.
type cappedSync struct{ discardSync }

func (cappedSync) ReadBuffer() (int, error) { return 208 << 10, nil }

// TestSyncReadBufferCapped: a sync socket whose receive buffer the
// kernel capped below what was asked is logged (its SetReadBuffer result
// was ignored): bulk copies overflow a small one.
func TestSyncReadBufferCapped(t *testing.T) {
	var logs testutil.SyncBuffer
	r := &syncRun{conn: cappedSync{}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	r.checkReadBuffer()
	if !strings.Contains(logs.String(), "rmem_max") || !strings.Contains(logs.String(), "bytes=212992") {
		t.Fatalf("a capped receive buffer not logged:\n%s", logs.String())
	}
	var none testutil.SyncBuffer
	(&syncRun{conn: discardSync{}, log: slog.New(slog.NewTextHandler(&none, nil))}).checkReadBuffer()
	if none.String() != "" {
		t.Fatalf("logged for a socket that reports nothing:\n%s", none.String())
	}
}

// TestSyncClockSkewLogged: a peer whose clock is more than MaxSkew off
// has every message dropped; the log says it is the clock, and by how
// much, not a bare "replay" (err=<nil>) that named no cause.
func TestSyncClockSkewLogged(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  time.Duration
		want string
	}{
		{"peer behind", -30 * time.Second, "offset=-30"},
		{"peer ahead", 45 * time.Second, "offset=45"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n fakeNet
			var logs testutil.SyncBuffer
			a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
			d2, _ := syncDirectorWith(t, &n, a2, syncOpts{logger: slog.New(slog.NewTextHandler(&logs, nil))}, a1, a2)
			c, _ := connsync.NewCodec(syncKey)
			h := connsync.Header{Type: connsync.TypeUpdate, Sender: a1, Epoch: 1, Seq: 1, Time: time.Now().Add(tc.off).UnixNano()}
			n.inject(c.Seal(connsync.AppendHeader(nil, &h)), netip.AddrPortFrom(a1, connsync.Port), a2)
			waitFor(t, "the message rejected", func() bool { return d2.Snapshot(false).HA.Sync.Rejected["replay"] == 1 })
			waitFor(t, "the clock named in the log", func() bool {
				return strings.Contains(logs.String(), "clocks differ") && strings.Contains(logs.String(), tc.want)
			})
		})
	}
}

// TestSyncRejectLoggedAgain: a rejection is warned about at once, then at
// most once a minute per reason with the count so far. Warned once per
// run, a key changed on one director a day after the start showed in the
// counter alone.
func TestSyncRejectLoggedAgain(t *testing.T) {
	var logs testutil.SyncBuffer
	r := &syncRun{log: slog.New(slog.NewTextHandler(&logs, nil))}
	from := netip.MustParseAddrPort("198.18.0.3:8848")
	lines := func() int { return strings.Count(logs.String(), "ha.sync: message dropped") }
	r.reject(rejBadMAC, from, nil)
	r.reject(rejBadMAC, from, nil)
	r.reject(rejMalformed, from, nil)
	if n := lines(); n != 2 {
		t.Fatalf("%d warnings, want 2 (one per reason):\n%s", n, logs.String())
	}
	// A minute later (the slot forgotten instead of waiting: the interval
	// itself is monotime.TestLimit's).
	r.rejectLogged[rejBadMAC].Forget()
	r.reject(rejBadMAC, from, nil)
	if n := lines(); n != 3 || !strings.Contains(logs.String(), "reason=bad_mac from=198.18.0.3:8848 err=<nil> dropped=3") {
		t.Fatalf("%d warnings, want a third with the count:\n%s", n, logs.String())
	}
}

// TestSyncOversizedDatagram: a datagram longer than any sync message,
// from a configured peer, is malformed, not a MAC failure: that reading
// said the peer's key differed and held preemption for its bulk copy.
func TestSyncOversizedDatagram(t *testing.T) {
	var n fakeNet
	a1, a2 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	d2, _ := syncDirectorWith(t, &n, a2, syncOpts{}, a1, a2)
	codec, err := connsync.NewCodec(syncKey)
	if err != nil {
		t.Fatal(err)
	}
	// Sealed with the shared key: what a peer of a future version, or
	// a sender gone wrong, could send.
	for i, size := range []int{connsync.MaxDatagram + 1, 2048, 4000} {
		h := connsync.Header{Type: connsync.TypeUpdate, Sender: a1, Epoch: 1, Seq: uint64(i + 1), Time: time.Now().UnixNano()}
		b := connsync.AppendHeader(nil, &h)
		b = append(b, make([]byte, size-len(b)-connsync.MACLen)...)
		n.inject(codec.Seal(b), netip.AddrPortFrom(a1, connsync.Port), a2)
	}
	waitFor(t, "three datagrams rejected", func() bool {
		r := d2.Snapshot(false).HA.Sync.Rejected
		return r["malformed"]+r["bad_mac"] >= 3
	})
	if r := d2.Snapshot(false).HA.Sync.Rejected; r["malformed"] != 3 || r["bad_mac"] != 0 {
		t.Fatalf("rejected %v, want 3 malformed and no bad_mac", r)
	}
}
