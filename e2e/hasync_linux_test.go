package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// syncStatus reads the sync side of the director behind sock.
func syncStatus(t *testing.T, sock string) *control.SyncStatus {
	t.Helper()
	h := haStatus(sock)
	if h == nil || h.Sync == nil {
		t.Fatalf("%s: no sync status (%+v)", sock, h)
	}
	return h.Sync
}

// haSyncLab is the sync lab before a director runs: two directors'
// configs (rr, ha: with sync:, priorities 150 and 100), whose sync peers
// are both directors (and the router, with routerPeer), the key they
// share, their control sockets.
type haSyncLab struct {
	l                        *testbed.Lab
	d1, d2                   *testbed.Host
	key                      []byte
	cfg1, cfg2, sock1, sock2 string
	n                        int // real servers
}

func newHASyncLab(t *testing.T, routerPeer bool) *haSyncLab {
	t.Helper()
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{Directors: 2, RealServers: 3})
	dir := t.TempDir()
	h := &haSyncLab{l: l, d1: l.Directors[0], d2: l.Directors[1], key: []byte("e2e sync key, 32 bytes or so..."),
		cfg1: filepath.Join(dir, "d1.yaml"), cfg2: filepath.Join(dir, "d2.yaml"),
		sock1: filepath.Join(dir, "d1.sock"), sock2: filepath.Join(dir, "d2.sock"), n: len(l.RealServers)}
	keyFile := filepath.Join(dir, "sync.key")
	if err := os.WriteFile(keyFile, append(slices.Clone(h.key), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	peers := h.d1.IPv4.String() + ", " + h.d2.IPv4.String()
	if routerPeer {
		peers += ", " + l.Router.IPv4.String()
	}
	syncBlock := fmt.Sprintf("  sync:\n    peers: [%s]\n    key_file: %s\n", peers, keyFile)
	writeHAConfigWith(t, l, h.d1, h.cfg1, 150, "rr", syncBlock)
	writeHAConfigWith(t, l, h.d2, h.cfg2, 100, "rr", syncBlock)
	return h
}

// haSyncPair is the sync lab running: director1 MASTER, director2 BACKUP
// with its bulk copy done.
type haSyncPair struct {
	*haSyncLab
	p1 *directorProc
}

func startHASyncPair(t *testing.T) *haSyncPair {
	t.Helper()
	h := newHASyncLab(t, false)
	l, d1, d2, cfg1, cfg2, sock1, sock2, n := h.l, h.d1, h.d2, h.cfg1, h.cfg2, h.sock1, h.sock2, h.n
	p1 := runDirectorOn(t, l, d1, n, "run", "-c", cfg1, "-ctl", sock1)
	waitHAState(t, sock1, "MASTER", 5*time.Second)
	runDirectorOn(t, l, d2, n, "run", "-c", cfg2, "-ctl", sock2)
	waitHAState(t, sock2, "BACKUP", 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for syncStatus(t, sock2).Bulk != "done" {
		if time.Now().After(deadline) {
			t.Fatalf("director2: no bulk copy from director1: %+v", syncStatus(t, sock2))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &haSyncPair{haSyncLab: h, p1: p1}
}

// TestHASyncFailover is issue 12's failover with connection sync: two
// drlb directors, rr (which cannot adopt a flow it has not seen: only
// sync makes the other director carry it), 100 ms adverts. A client
// making a new connection every 20 ms and holding 4 keep-alive
// connections sees no failed request and no broken connection when the
// master is killed (SIGKILL), and again when it comes back, copies the
// table from the other director and only then preempts. A sync message
// signed with another key, sent from the dead master's address, changes
// nothing and is counted.
func TestHASyncFailover(t *testing.T) {
	h := startHASyncPair(t)
	l, d1, d2, cfg1, sock1, sock2, p1, n := h.l, h.d1, h.d2, h.cfg1, h.sock1, h.sock2, h.p1, h.n
	load := startLoad(t, l, 4)
	waitRouterARP(t, l, d1.MAC, 5*time.Second)
	time.Sleep(2 * time.Second)
	if f := forwarded(t, sock1); f == 0 {
		t.Error("the master carries nothing")
	}
	out, err := execCtl(sock2)
	if err != nil || !strings.Contains(out, "HA BACKUP") || !strings.Contains(out, "Sync peers "+d1.IPv4.String()+" bulk done") {
		t.Errorf("drlb ctl -L -n on director2: %v\n%s", err, out)
	}
	t.Logf("drlb ctl -L -n on director2 (BACKUP, synced):\n%s", out)

	// SIGKILL the master: the backup carries its flows, rr or not.
	load.resetGap()
	killed := time.Now()
	if err := p1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p1.done
	takeover := waitHAState(t, sock2, "MASTER", haTakeover)
	waitRouterARP(t, l, d2.MAC, 2*time.Second)
	t.Logf("SIGKILL: director2 MASTER %v after the kill, router's ARP entry moved %v after the kill",
		takeover.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	gapKill := load.gap()

	// A message signed with another key, from the dead master's address
	// and port, ending every connection director2 holds: nothing changes.
	forged := forgeEnds(t, l, d1, d2, sock2)
	time.Sleep(200 * time.Millisecond)
	st := syncStatus(t, sock2)
	if st.Rejected["bad_mac"] != 1 {
		t.Errorf("director2 counted %d bad MACs, want 1 (%+v)", st.Rejected["bad_mac"], st)
	}
	if left := countConns(t, sock2, forged); left != len(forged) {
		t.Errorf("after the forged message director2 holds %d of the %d connections it named", left, len(forged))
	}

	// The master comes back: it copies the table, then preempts.
	load.resetGap()
	back := time.Now()
	p1 = runDirectorOn(t, l, d1, n, "run", "-c", cfg1, "-ctl", sock1)
	waitHAState(t, sock1, "MASTER", 5*time.Second)
	waitHAState(t, sock2, "BACKUP", time.Second)
	waitRouterARP(t, l, d1.MAC, 2*time.Second)
	t.Logf("restart: director1 MASTER again, router's ARP entry back %v after the start", time.Since(back).Round(time.Millisecond))
	st1 := syncStatus(t, sock1)
	if st1.Bulk != "done" || st1.BulkFrom != d2.IPv4 || st1.BulkEntries == 0 {
		t.Errorf("director1 after restart: %+v", st1)
	}
	logs := p1.logs.String()
	copied, became := strings.Index(logs, "connection table copied"), strings.Index(logs, "BACKUP -> MASTER")
	if copied < 0 || became < 0 || became < copied {
		t.Errorf("director1 preempted before its bulk copy (copied at %d, MASTER at %d):\n%s", copied, became, logs)
	}
	t.Logf("director1's bulk copy: %d entries from %s in %.1f ms", st1.BulkEntries, st1.BulkFrom, st1.BulkTook*1000)
	time.Sleep(2 * time.Second)
	gapPreempt := load.gap()

	load.finish()
	out1, _ := execCtl(sock1)
	t.Logf("drlb ctl -L -n on director1 (MASTER again):\n%s", out1)
	t.Logf("client: %d new connections ok, %d failed; keep-alive requests %d ok, %d broken connections; longest gap without an answer: %v at the kill, %v at the preemption; slowest request %v",
		load.newOK.Load(), load.newFailed.Load(), load.keptOK.Load(), load.keptBroken.Load(),
		gapKill.Round(time.Millisecond), gapPreempt.Round(time.Millisecond), time.Duration(load.maxLatency.Load()).Round(time.Millisecond))
	if load.newFailed.Load() != 0 || load.keptBroken.Load() != 0 {
		t.Errorf("client failures:\n%s", strings.Join(load.errs, "\n"))
	}
	if load.newOK.Load() < 200 || load.keptOK.Load() < 200 {
		t.Errorf("too little traffic to judge: %d new, %d keep-alive", load.newOK.Load(), load.keptOK.Load())
	}
	for _, s := range []string{sock1, sock2} {
		if y := syncStatus(t, s); y.Dropped != 0 || y.Rejected["replay"] != 0 || y.Rejected["malformed"] != 0 || y.Rejected["unknown_peer"] != 0 {
			t.Errorf("%s: sync %+v", s, y)
		}
	}
}

// TestHASyncLinkDown is issue 12's other way for a master to die: its LAN
// link goes down (on the switch side) while drlb keeps running. The old
// master sees its carrier go and is FAULT; the backup hears no advert and
// takes over. When the link comes back the old master is BACKUP, copies
// the table from the other director again (a keep-alive connection was
// opened through it during the cut), then preempts and takes the router's
// ARP entry back. The client (rr, sync, a new connection every 20 ms, 5
// keep-alive connections) sees no failed request and no broken connection
// through both.
func TestHASyncLinkDown(t *testing.T) {
	h := startHASyncPair(t)
	l, d1, d2, sock1, sock2 := h.l, h.d1, h.d2, h.sock1, h.sock2
	load := startLoad(t, l, 4)
	waitRouterARP(t, l, d1.MAC, 5*time.Second)
	time.Sleep(2 * time.Second)

	swh := testutil.NetlinkHandle(t, l.Switch.NS)
	bp, err := swh.LinkByName(d1.BridgePort)
	if err != nil {
		t.Fatal(err)
	}
	defer swh.LinkSetUp(bp) // whatever happens, the lab is torn down with its link up

	// Link down: director1 is cut off and cannot resign.
	load.resetGap()
	cut := time.Now()
	if err := swh.LinkSetDown(bp); err != nil {
		t.Fatal(err)
	}
	takeover := waitHAState(t, sock2, "MASTER", haTakeover)
	waitRouterARP(t, l, d2.MAC, 2*time.Second)
	t.Logf("link down: director2 MASTER %v after the cut, router's ARP entry moved %v after it",
		takeover.Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))
	if takeover > haTakeover {
		t.Errorf("takeover took %v, want under %v at %v adverts", takeover, haTakeover, haInterval)
	}
	// director1 saw its carrier go: FAULT, as keepalived would be.
	waitHAState(t, sock1, "FAULT", time.Second)
	// A connection director2 schedules while director1 is cut off, so
	// that director1 never heard of it: it must go on after the link
	// is back and director1 has taken over again.
	load.keepAlive(t, l)
	time.Sleep(2 * time.Second)
	gapDown := load.gap()

	// Link up: director1 is BACKUP, copies the table from director2
	// again (the connections it missed), then preempts after the
	// master-down interval; director2 yields.
	load.resetGap()
	up := time.Now()
	if err := swh.LinkSetUp(bp); err != nil {
		t.Fatal(err)
	}
	waitHAState(t, sock1, "BACKUP", time.Second)
	back := waitHAState(t, sock1, "MASTER", 5*time.Second)
	yielded := waitHAState(t, sock2, "BACKUP", time.Second)
	waitRouterARP(t, l, d1.MAC, 3*time.Second)
	t.Logf("link up: director1 MASTER %v after it, director2 BACKUP %v after it, router's ARP entry back on director1 %v after it",
		back.Round(time.Millisecond), yielded.Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	// After FAULT: the table copied once, then MASTER (at start
	// director1 was alone: its first request may have timed out).
	logs := h.p1.logs.String()
	fault := strings.Index(logs, "-> FAULT")
	if fault < 0 {
		t.Fatalf("director1 never logged FAULT:\n%s", logs)
	}
	after := logs[fault:]
	copied, master := strings.Index(after, "connection table copied"), strings.Index(after, "BACKUP -> MASTER")
	if n := strings.Count(after, "connection table copied"); n != 1 || master < copied {
		t.Errorf("director1 after FAULT: want the table copied once (%d), then MASTER:\n%s", n, after)
	}
	if st1 := syncStatus(t, sock1); st1.Bulk != "done" || st1.BulkFrom != d2.IPv4 || st1.BulkEntries == 0 {
		t.Errorf("director1 after the link came back: %+v", st1)
	} else {
		t.Logf("director1's second bulk copy: %d entries from %s in %.1f ms", st1.BulkEntries, st1.BulkFrom, st1.BulkTook*1000)
	}
	time.Sleep(2 * time.Second)
	gapUp := load.gap()

	load.finish()
	t.Logf("client: %d new connections ok, %d failed; keep-alive requests %d ok, %d broken connections; longest gap without an answer: %v at the link down, %v at the link up; slowest request %v",
		load.newOK.Load(), load.newFailed.Load(), load.keptOK.Load(), load.keptBroken.Load(),
		gapDown.Round(time.Millisecond), gapUp.Round(time.Millisecond), time.Duration(load.maxLatency.Load()).Round(time.Millisecond))
	if load.newFailed.Load() != 0 || load.keptBroken.Load() != 0 {
		t.Errorf("client failures:\n%s", strings.Join(load.errs, "\n"))
	}
	if load.newOK.Load() < 200 || load.keptOK.Load() < 200 {
		t.Errorf("too little traffic to judge: %d new, %d keep-alive", load.newOK.Load(), load.keptOK.Load())
	}
}

func execCtl(sock string) (string, error) {
	out, err := exec.Command(drlbBinary, "ctl", "-s", sock, "-L", "-n").CombinedOutput()
	return string(out), err
}

// forgeEnds sends director2, from director1's address and sync port, one
// message ending up to connsync.MaxEntries of the connections it holds,
// signed with a key that is not theirs; it returns the connections named.
func forgeEnds(t *testing.T, l *testbed.Lab, from, to *testbed.Host, sock string) []control.ConnEntry {
	t.Helper()
	s := ctlSnapshot(t, sock, true)
	var named []control.ConnEntry
	other, _ := connsync.NewCodec([]byte("a key the directors do not share"))
	h := connsync.Header{Type: connsync.TypeUpdate, Sender: from.IPv4, Epoch: uint64(time.Now().UnixNano()), Seq: 1, Time: time.Now().UnixNano()}
	b := connsync.AppendHeader(nil, &h)
	for _, c := range s.ConnEntries {
		if c.State != "ESTABLISHED" || len(named) == connsync.MaxEntries {
			continue
		}
		b, _ = connsync.AppendEntry(b, &connsync.Entry{Op: connsync.OpEnd, Proto: 6, State: 2, CIP: c.Client.Addr(), CPort: c.Client.Port(),
			VIP: c.Virtual.Addr(), VPort: c.Virtual.Port(), SvcPort: c.Virtual.Port(), Real: c.Real})
		named = append(named, c)
	}
	if len(named) == 0 {
		t.Fatal("director2 holds no established connection to forge an end for")
	}
	b = other.Seal(b)
	err := l.Do(from, func() error {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from.IPv4, connsync.Port)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteToUDPAddrPort(b, netip.AddrPortFrom(to.IPv4, connsync.Port))
		return err
	})
	if err != nil {
		t.Fatalf("sending the forged message: %v", err)
	}
	return named
}

// countConns is how many of conns the director behind sock still holds.
func countConns(t *testing.T, sock string, conns []control.ConnEntry) int {
	t.Helper()
	s := ctlSnapshot(t, sock, true)
	have := map[netip.AddrPort]bool{}
	for _, c := range s.ConnEntries {
		have[c.Client] = true
	}
	n := 0
	for _, c := range conns {
		if have[c.Client] {
			n++
		}
	}
	return n
}

// TestHASyncLargeTable: a director that starts copies a table that takes
// longer to send than the bulk timeout (3 s without anything arriving):
// half a million entries, about 4 s at the sender's pace. The copy arrives
// whole; before, the timeout ran from the request and the director would
// have preempted with a fraction of the table. director1's table is
// filled by a third sync peer (the router's namespace, speaking
// connsync over real UDP) and nothing else, so no client traffic is
// needed for a table that size.
func TestHASyncLargeTable(t *testing.T) {
	h := newHASyncLab(t, true) // the router fills director1's table
	l, d1, d2, key, cfg1, cfg2, sock1, sock2, n := h.l, h.d1, h.d2, h.key, h.cfg1, h.cfg2, h.sock1, h.sock2, h.n
	filler := l.Router.IPv4
	runDirectorOn(t, l, d1, n, "run", "-c", cfg1, "-ctl", sock1)
	waitHAState(t, sock1, "MASTER", 5*time.Second)

	// Fill director1's table: entries paced so that its socket keeps up.
	const entries = 500_000
	var conn connsync.Conn
	if err := l.Do(l.Router, func() (err error) { conn, err = connsync.ListenUDP(filler); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	codec, err := connsync.NewCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(d1.IPv4, connsync.Port)
	hdr := connsync.Header{Type: connsync.TypeUpdate, Sender: filler, Epoch: uint64(time.Now().UnixNano())}
	buf := make([]byte, 0, connsync.MaxDatagram+connsync.MACLen)
	flush := func() {
		hdr.Seq++
		connsync.Restamp(buf, hdr.Seq, time.Now().UnixNano())
		if err := conn.WriteTo(codec.Seal(buf), to); err != nil {
			t.Fatal(err)
		}
		if hdr.Seq%8 == 0 { // director1's socket buffer holds ~150 datagrams
			time.Sleep(time.Millisecond)
		}
	}
	buf = connsync.AppendHeader(buf, &hdr)
	for i := range entries {
		e := connsync.Entry{Op: connsync.OpUpsert, Proto: 6, State: 2, VIP: l.VIP, VPort: testbed.HTTPPort, SvcPort: testbed.HTTPPort,
			Real: l.RealServers[i%n].IPv4, CIP: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), CPort: uint16(10000 + i>>16),
			Timeout: 10 * time.Minute}
		var ok bool
		if buf, ok = connsync.AppendEntry(buf, &e); !ok {
			flush()
			buf = connsync.AppendHeader(buf[:0], &hdr)
			buf, _ = connsync.AppendEntry(buf, &e)
		}
	}
	flush()
	var applied uint64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		now := syncStatus(t, sock1).Entries["applied"]
		if now == applied && now > 0 || time.Now().After(deadline) {
			break
		}
		applied = now
	}
	if applied < entries*96/100 { // UDP: a datagram may be lost; 480k take over 3 s to send at most speed
		t.Fatalf("director1 applied %d of the %d entries sent", applied, entries)
	}

	// director2 starts: its copy takes longer than the timeout.
	runDirectorOn(t, l, d2, n, "run", "-c", cfg2, "-ctl", sock2)
	var st *control.SyncStatus
	for deadline := time.Now().Add(70 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st = syncStatus(t, sock2); st.Bulk != "waiting" || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("director2's bulk copy: %s, %d entries from %s in %.2f s (director1 holds %d)", st.Bulk, st.BulkEntries, st.BulkFrom, st.BulkTook, applied)
	if st.Bulk != "done" || st.BulkFrom != d1.IPv4 || st.BulkEntries < applied*90/100 { // UDP again
		t.Errorf("director2's bulk copy: %+v, want done from %s with about %d entries", st, d1.IPv4, applied)
	}
	if st.BulkTook < 3 {
		t.Errorf("the copy took %.2f s: under the 3 s timeout, this test shows nothing", st.BulkTook)
	}
	waitHAState(t, sock2, "BACKUP", time.Second)
}
