package director

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/monotime"
)

// Connection sync between directors (issue 12; README "Two directors:
// VRRP failover"). The data path records table changes into the
// forwarder's buffer (forwarder/sync.go); after each batch the worker
// copies them out under its lock, then packs them (its own packer) and
// sends them to every peer itself, before it writes the batch's frames: a new connection's
// record is on the wire before its SYN, so a master killed after
// forwarding the SYN has already told the backup (with a sender
// goroutine in between, the record could still be queued at the kill,
// and the backup dropped the connection's next segments: seen once in
// CI). The receiver goroutine verifies each datagram (peer
// address, HMAC, replay window) and applies each entry under the lock of
// the worker whose table holds its client (Director.workerOf). At start a director
// asks its peers for a bulk copy and holds VRRP preemption until one
// arrives (or syncBulkTimeout passes). The answer's BulkDone says how
// many entries it carried: an answer that arrived short (a datagram lost
// on the LAN or in a full socket buffer) is asked for again, up to
// syncBulkAttempts answers.
const (
	// syncEventsPerBatch bounds the forwarder's buffer: a batch of 64
	// frames records at most 2 events per frame (a connection and its
	// persistence template).
	syncEventsPerBatch = 256
	// A bulk request is repeated every syncBulkRetry until a peer's
	// answer is complete; the director gives up after syncBulkTimeout
	// without any answer arriving (an answer under way keeps it waiting,
	// for syncBulkMaxWait at most: answers arrive at about 120k entries
	// a second, TestBulkCopyLongerThanTimeout, so a million take 9 s).
	syncBulkRetry   = 300 * time.Millisecond
	syncBulkTimeout = 3 * time.Second
	syncBulkMaxWait = 60 * time.Second
	// syncBulkAttempts bounds the answers a wait takes that arrive with
	// fewer entries than their BulkDone counts (lost datagrams): the
	// last one lets preemption go with what arrived ("incomplete"),
	// since each answer's entries were applied, and a loss that keeps
	// recurring (a receive buffer too small, a lossy link) would
	// otherwise hold it for syncBulkMaxWait. Within syncBulkMaxWait
	// still.
	syncBulkAttempts = 4
	// A bulk answer walks syncBulkChunk slots per lock hold, and on to
	// the end of the probe run it stops in (a few slots at the table's
	// load), so that no entry a deletion shifts between chunks is
	// skipped (conntable.Table.RangeSlots); it sends what it found
	// (about 128 entries, 7 datagrams, at most) before any update the
	// worker makes after it, and pauses syncBulkPause after every
	// syncBulkBurst datagrams (at most 8000 datagrams, 160k entries, a
	// second; 120k measured with chunks of 4096).
	syncBulkChunk = 256
	syncBulkBurst = 16
	syncBulkPause = 2 * time.Millisecond
)

// syncRun is the sync side of a director with ha.sync.
type syncRun struct {
	d     *Director
	conn  connsync.Conn
	key   []byte
	self  netip.Addr
	peers []netip.AddrPort // the configured peers, this director excluded
	epoch uint64
	seq   atomic.Uint64 // taken under sendMu (packer.flush)
	log   *slog.Logger
	// sendMu orders the datagrams of every packer: number, seal, send.
	sendMu sync.Mutex

	// bulk state: done is closed once a bulk copy arrived or timed out.
	bulkMu      sync.Mutex
	bulkState   string // waiting, done, timeout
	bulkFrom    netip.Addr
	bulkEntries uint64
	bulkTook    time.Duration
	bulkDone    chan struct{}
	bulkStart   time.Time
	serving     map[netip.Addr]bool // peers a bulk answer is being sent to
	// hold holds VRRP preemption (true) while a bulk copy is awaited,
	// and lets it go (false) once it arrived or timed out; called with
	// bulkMu held.
	hold func(bool)
	// mismatches are the services and real servers noteMismatch has
	// logged (bulkMu held).
	mismatches map[string]bool
	// bulkGen numbers the waits (bulkAgain starts another), from the
	// process's epoch: each request carries it and the answer's end
	// echoes it, and an answer to an earlier wait's request, or to an
	// earlier process's, does not count, since it may lack what the link
	// lost meanwhile.
	bulkGen uint64
	// again asks the requester for another bulk copy (bulkAgain).
	again chan struct{}
	// bulkTimeout is syncBulkTimeout (shorter in tests).
	bulkTimeout time.Duration
	// answerAt is when a Bulk datagram last arrived (monotonic, 0:
	// none yet): an answer under way keeps the wait going past
	// bulkTimeout.
	answerAt atomic.Int64
	// badMACAt is when a message from a configured peer's address last
	// failed the MAC (monotonic, 0: never): a peer whose key differs
	// (a rotation half done) is alive, and its table is missing, not
	// empty, so the wait goes on (to syncBulkMaxWait at most).
	badMACAt atomic.Int64
	// badMACFrom is that peer, and macWarned says this wait logged it
	// (bulkMu).
	badMACFrom netip.Addr
	macWarned  bool
	// short counts this wait's answers that arrived with fewer entries
	// than their BulkDone said (bulkMu).
	short int
	// base is when the syncRun was built: monotonic() counts from it,
	// so that a step of the wall clock (NTP at boot, when directors
	// start) neither cuts a wait short nor holds preemption for hours.
	base time.Time

	sent, sendErrors, received atomic.Uint64
	rejected                   [4]atomic.Uint64 // by control.SyncRejectReasons
	// rejectLogged spaces each reason's warnings, the last one
	// [skewLog] the clocks' (rejectStale).
	rejectLogged [5]monotime.Limit
	entries      [len(forwarder.SyncResultNames)]atomic.Uint64
	fromPeer     map[netip.Addr]uint64 // bulk entries per peer (receiver only)
}

const (
	rejBadMAC = iota
	rejReplay
	rejUnknownPeer
	rejMalformed
)

// maxSyncKeyFile bounds ha.sync.key_file: a key is tens of bytes.
const maxSyncKeyFile = 64 << 10

// ReadSyncKey reads ha.sync.key_file: the shared secret, trailing
// whitespace removed; at least connsync.MinKeyLen bytes.
func ReadSyncKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ha.sync.key_file: %w (sync is refused without a key)", err)
	}
	defer f.Close()
	// Bounded: a key_file naming /dev/urandom itself, or a large file by
	// mistake, was read until the process ran out of memory, at start
	// or at a reload.
	b, err := io.ReadAll(io.LimitReader(f, maxSyncKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("ha.sync.key_file: %w (sync is refused without a key)", err)
	}
	if len(b) > maxSyncKeyFile {
		return nil, fmt.Errorf("ha.sync.key_file %s: larger than %d bytes: not a key (head -c 32 /dev/urandom | base64 > %s)", path, maxSyncKeyFile, path)
	}
	b = bytes.TrimRight(b, " \t\r\n")
	if len(b) < connsync.MinKeyLen {
		return nil, fmt.Errorf("ha.sync.key_file %s: a key of %d bytes, need at least %d (head -c 32 /dev/urandom | base64 > %s)",
			path, len(b), connsync.MinKeyLen, path)
	}
	return b, nil
}

// newSync builds the sync side for cfg.HA.Sync; self is the director's
// own address (skipped in the peer list, so all directors can share one).
func newSync(d *Director, s *config.HASync, conn connsync.Conn, key []byte, self netip.Addr) (*syncRun, error) {
	if conn == nil {
		return nil, errors.New("director: ha.sync: needs a sync socket (Options.Sync)")
	}
	if _, err := connsync.NewCodec(key); err != nil {
		return nil, fmt.Errorf("director: ha.sync: %w: at least %d bytes", err, connsync.MinKeyLen)
	}
	r := &syncRun{d: d, conn: conn, key: slices.Clone(key), self: self, epoch: uint64(time.Now().UnixNano()), log: d.log,
		bulkState: "waiting", bulkDone: make(chan struct{}), serving: map[netip.Addr]bool{}, fromPeer: map[netip.Addr]uint64{},
		again: make(chan struct{}, 1), bulkTimeout: syncBulkTimeout, base: time.Now()}
	// Waits are numbered from this process's epoch, not from 0: a peer
	// still answering the previous process (restarted mid-copy) ends
	// its answer with that process's number, which must not count as
	// this one's, or a partial copy would release preemption.
	r.bulkGen = r.epoch
	for _, p := range s.Peers {
		if p.Unmap() != self {
			r.peers = append(r.peers, netip.AddrPortFrom(p.Unmap(), connsync.Port))
		}
	}
	if len(r.peers) == 0 {
		return nil, errors.New("director: ha.sync.peers: no peer but this director itself")
	}
	return r, nil
}

// entryOf is an event as the wire carries it.
func entryOf(ev *forwarder.SyncEvent) connsync.Entry {
	return connsync.Entry{Op: ev.Op, Proto: ev.Key.Proto, Kind: ev.Key.Kind, State: ev.State,
		CIP: netip.AddrFrom16(ev.Key.CIP).Unmap(), VIP: netip.AddrFrom16(ev.Key.VIP).Unmap(), CPort: ev.Key.CPort, VPort: ev.Key.VPort,
		SvcPort: ev.SvcPort, Real: ev.Real, Timeout: ev.Timeout}
}

// packer builds and sends datagrams with its own codec (one per
// goroutine).
type packer struct {
	r     *syncRun
	codec *connsync.Codec
	buf   []byte
	typ   uint8
	to    []netip.AddrPort
	sent  int // datagrams, for pacing
	// held: the caller holds r.sendMu (a bulk answer's chunk), which
	// flush then does not take.
	held bool
}

func (r *syncRun) packer(typ uint8, to []netip.AddrPort) *packer {
	c, _ := connsync.NewCodec(r.key) // checked in newSync
	return &packer{r: r, codec: c, buf: make([]byte, 0, connsync.MaxDatagram+connsync.MACLen), typ: typ, to: to}
}

// start begins a datagram; flush numbers it.
func (p *packer) start() {
	h := connsync.Header{Type: p.typ, Sender: p.r.self, Epoch: p.r.epoch}
	p.buf = connsync.AppendHeader(p.buf, &h)
}

// add packs ev, sending the datagram first when it is full.
func (p *packer) add(ev *forwarder.SyncEvent) {
	if len(p.buf) == 0 {
		p.start()
	}
	e := entryOf(ev)
	var ok bool
	if p.buf, ok = connsync.AppendEntry(p.buf, &e); !ok {
		p.flush()
		p.start()
		p.buf, _ = connsync.AppendEntry(p.buf, &e)
	}
}

// flush numbers, seals and sends what is packed (a message without
// entries too, for a request or the end of a bulk copy). The number is
// taken under sendMu, held until the datagram has gone to every peer:
// datagrams leave in the order of their numbers, whichever packer
// (worker, bulk answer, request) filled them, so none falls behind the
// receiver's replay window (connsync.Window: 64) however many others
// were filled side by side.
func (p *packer) flush() {
	if len(p.buf) == 0 {
		return
	}
	r := p.r
	if !p.held {
		r.sendMu.Lock()
		defer r.sendMu.Unlock()
	}
	connsync.Restamp(p.buf, r.seq.Add(1), time.Now().UnixNano())
	p.buf = p.codec.Seal(p.buf)
	for _, to := range p.to {
		err := r.conn.WriteTo(p.buf, to)
		if errors.Is(err, net.ErrClosed) {
			break // the director is stopping: a worker's last batch
		}
		if err != nil {
			if n := r.sendErrors.Add(1); n == 1 || n%1000 == 0 {
				r.log.Warn("ha.sync: send", "peer", to.Addr(), "err", err, "errors", n)
			}
			continue
		}
		r.sent.Add(1)
	}
	p.buf = p.buf[:0]
	p.sent++
}

// sendRequest sends a BulkRequest of request id to peers.
func (r *syncRun) sendRequest(to []netip.AddrPort, id uint64) {
	p := r.packer(connsync.TypeBulkRequest, to)
	p.start()
	p.buf, _ = connsync.AppendRequest(p.buf, id) // an empty message has room
	p.flush()
}

// sendBulkDone ends the answer to request id, which carried entries
// entries, to peer.
func (r *syncRun) sendBulkDone(peer netip.AddrPort, id, entries uint64) {
	p := r.packer(connsync.TypeBulkDone, []netip.AddrPort{peer})
	p.start()
	p.buf, _ = connsync.AppendBulkDone(p.buf, id, entries) // an empty message has room
	p.flush()
}

// updates is a worker's packer for its batches' events (loop).
func (r *syncRun) updates() *packer { return r.packer(connsync.TypeUpdate, r.peers) }

// addAll packs evs (a batch's events, copied out of the forwarder's
// buffer: the worker calls it without its lock), sending full datagrams
// as it goes; the caller flushes the rest.
func (p *packer) addAll(evs []forwarder.SyncEvent) {
	for i := range evs {
		p.add(&evs[i])
	}
}

// requestBulk asks the peers for their tables until one answer is
// complete, or until syncBulkTimeout passes with no answer arriving (or
// syncBulkMaxWait in all); then preemption is allowed. Asked again
// meanwhile (bulkAgain), it waits afresh.
func (r *syncRun) requestBulk(ctx context.Context) {
	r.bulkMu.Lock()
	if r.bulkState != "waiting" {
		// A second bulkAgain's wake-up, for a wait the first one's
		// request already ended: asking again would cost a whole table.
		r.bulkMu.Unlock()
		return
	}
	r.bulkStart = time.Now()
	done, gen, start := r.bulkDone, r.bulkGen, r.bulkStart
	r.bulkMu.Unlock()
	deadline := time.NewTimer(r.bulkTimeout)
	defer deadline.Stop()
	retry := time.NewTicker(syncBulkRetry)
	defer retry.Stop()
	for {
		r.sendRequest(r.peers, gen)
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-r.again:
			r.bulkMu.Lock()
			r.bulkStart = time.Now()
			done, gen, start = r.bulkDone, r.bulkGen, r.bulkStart
			r.bulkMu.Unlock()
			deadline.Reset(r.bulkTimeout)
		case <-deadline.C:
			last, waited := time.Duration(r.answerAt.Load()), time.Since(start)
			bad, now := time.Duration(r.badMACAt.Load()), r.monotonic()
			if quiet := max(now-last, 0); last != 0 && quiet < r.bulkTimeout && waited < syncBulkMaxWait {
				// An answer is arriving: wait until it has been
				// quiet for a whole timeout (syncBulkMaxWait in all).
				deadline.Reset(min(r.bulkTimeout-quiet, syncBulkMaxWait-waited))
				continue
			}
			if quiet := max(now-bad, 0); bad > start.Sub(r.base) && quiet < r.bulkTimeout && waited < syncBulkMaxWait {
				// A peer is there but its key differs: its table
				// exists, and preempting with none would drop its
				// connections. Wait while it keeps sending.
				r.bulkMu.Lock()
				if !r.macWarned && r.bulkDone == done {
					r.macWarned = true
					r.log.Warn("ha.sync: a peer's messages fail the MAC: the directors' ha.sync keys differ (a key rotation half done?); preemption held while it sends, until "+syncBulkMaxWait.String()+" at most",
						"peer", r.badMACFrom, "waited", waited.Round(time.Millisecond))
				}
				r.bulkMu.Unlock()
				deadline.Reset(min(r.bulkTimeout-quiet, syncBulkMaxWait-waited))
				continue
			}
			r.bulkMu.Lock()
			if r.bulkState == "waiting" && r.bulkDone == done {
				why := "no peer sent its connection table: preemption allowed with the table as it is (the first director up, or no peer reachable)"
				switch {
				case waited >= syncBulkMaxWait && bad > start.Sub(r.base) && last <= start.Sub(r.base):
					why = "a peer's messages fail the MAC (the directors' ha.sync keys differ) and no connection table arrived within " + syncBulkMaxWait.String() + ": preemption allowed with the table as it is"
				case waited >= syncBulkMaxWait:
					why = "no complete connection table from a peer within " + syncBulkMaxWait.String() + ": preemption allowed with what arrived"
				case last > start.Sub(r.base):
					why = "no complete connection table from a peer, and nothing more arriving: preemption allowed with what arrived"
				}
				r.log.Warn("ha.sync: "+why, "waited", waited.Round(time.Millisecond), "peers", r.peers)
				r.endWait("timeout")
			}
			r.bulkMu.Unlock()
			return
		case <-retry.C:
		}
	}
}

// monotonic is the time since r was built, from the monotonic clock.
func (r *syncRun) monotonic() time.Duration { return time.Since(r.base) }

// bulkAgain asks for another bulk copy (the link came back: updates
// were lost meanwhile) and holds preemption until it arrives, or until
// requestBulk gives up. It starts a new wait even while one is under
// way: the answer to an earlier request does not count (bulkFinished),
// and a wait that began before the link went down would time out early.
func (r *syncRun) bulkAgain() {
	r.bulkMu.Lock()
	// A wait under way has its channel dropped unclosed: only
	// requestBulk waits on it, and it takes the new one (r.again).
	r.bulkState, r.bulkDone = "waiting", make(chan struct{})
	r.bulkGen++
	r.short, r.macWarned = 0, false
	if r.hold != nil {
		r.hold(true)
	}
	r.bulkMu.Unlock()
	select {
	case r.again <- struct{}{}:
	default: // one is asked for already
	}
}

// requestBulks asks for the bulk copy at start, then again whenever
// bulkAgain says so, until ctx ends.
func (r *syncRun) requestBulks(ctx context.Context) {
	r.requestBulk(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.again:
			r.requestBulk(ctx)
		}
	}
}

// noteMismatch logs, once per service and real server, an entry a peer
// sent for a service or real server this director does not have: the
// directors' configurations differ, and those connections would break
// on a failover. Counted always (unknown_service, unknown_server); the
// log is bounded (maxMismatchLogs).
//
// A service is named by its port as configured (SvcPort), 0 for one of
// every port: keyed by the connection's port, each client port of such a
// service logged a line, and 64 of them filled the log with one problem.
func (r *syncRun) noteMismatch(peer netip.Addr, e *connsync.Entry, res forwarder.SyncResult) {
	svc := netip.AddrPortFrom(e.VIP, e.SvcPort)
	key := fmt.Sprintf("%d %s %s", e.Proto, svc, e.Real)
	r.bulkMu.Lock()
	if r.mismatches == nil {
		r.mismatches = map[string]bool{}
	}
	seen := r.mismatches[key] || len(r.mismatches) >= maxMismatchLogs
	if !seen {
		r.mismatches[key] = true
	}
	r.bulkMu.Unlock()
	if seen {
		return
	}
	what := "service"
	if res == forwarder.SyncUnknownServer {
		what = "real server"
	}
	r.log.Warn("ha.sync: a peer syncs connections of a "+what+" this director does not have: their configurations differ, and those connections break on a failover",
		"peer", peer, "protocol", e.Proto, "vip", svc, "real", e.Real)
}

// maxMismatchLogs bounds the distinct mismatches noteMismatch logs.
const maxMismatchLogs = 64

// bulkFinished records the end of a peer's bulk answer, of which
// entries arrived: the first complete one counts, if it answers the
// request of this wait (a peer without request numbers says none, and
// its copy counts) and carried as many entries as arrived (a peer
// without the count says nothing, and its copy counts as before).
func (r *syncRun) bulkFinished(from netip.Addr, entries uint64, end connsync.BulkEnd) {
	r.bulkMu.Lock()
	defer r.bulkMu.Unlock()
	if r.bulkState != "waiting" {
		return
	}
	if end.HasRequest && end.Request != r.bulkGen {
		// Asked for before bulkAgain: what the link lost may be missing.
		r.log.Info("ha.sync: a bulk copy asked for before the link went down ignored; waiting for a new one", "peer", from, "entries", entries)
		return
	}
	if end.HasEntries && entries != end.Entries {
		// Datagrams lost (fewer), or the end of an earlier answer lost
		// and two answers counted as one (more): this one may lack
		// entries. Its entries are applied; requestBulk asks again
		// (every syncBulkRetry), and the next answer is counted afresh.
		r.short++
		what := "datagrams of it were lost (a lossy link, or the receive buffer full: see net.core.rmem_max)"
		if entries > end.Entries {
			what = "more than it sent: the end of an earlier answer was lost, and this one cannot be checked"
		}
		if r.short < syncBulkAttempts {
			r.log.Warn("ha.sync: a peer's connection table arrived incomplete, "+what+": asking again",
				"peer", from, "received", entries, "sent", end.Entries, "attempt", r.short)
			return
		}
		r.bulkFrom, r.bulkEntries, r.bulkTook = from, entries, time.Since(r.bulkStart)
		r.log.Warn("ha.sync: a peer's connection table arrived incomplete "+fmt.Sprint(r.short)+" times, "+what+": preemption allowed with what arrived",
			"peer", from, "received", entries, "sent", end.Entries, "took", r.bulkTook.Round(time.Millisecond))
		r.endWait("incomplete")
		return
	}
	r.bulkFrom, r.bulkEntries, r.bulkTook = from, entries, time.Since(r.bulkStart)
	r.log.Info("ha.sync: connection table copied from a peer: preemption allowed", "peer", from, "entries", entries,
		"took", r.bulkTook.Round(time.Microsecond))
	r.endWait("done")
}

// endWait ends the wait under way, with bulkMu held: its state (done,
// incomplete, timeout), its channel closed, preemption let go.
func (r *syncRun) endWait(state string) {
	r.bulkState = state
	r.short, r.macWarned = 0, false
	close(r.bulkDone)
	if r.hold != nil {
		r.hold(false)
	}
}

// serveBulk sends the whole table to peer, in chunks, paced, and ends
// with the number of the request it answers (0 for a request without
// one: a drlb that sends none reads none) and how many entries it sent,
// which the requester checks against what arrived.
func (r *syncRun) serveBulk(ctx context.Context, peer netip.AddrPort, id uint64) {
	defer func() {
		r.bulkMu.Lock()
		delete(r.serving, peer.Addr())
		r.bulkMu.Unlock()
	}()
	p := r.packer(connsync.TypeBulk, []netip.AddrPort{peer})
	var evs []forwarder.SyncEvent
	n, wi := 0, 0
	for cursor := 0; cursor >= 0; {
		evs = evs[:0]
		now := r.d.clock().UnixNano()
		w := r.d.workers[wi]
		w.mu.Lock()
		cursor = w.fw.RangeSync(cursor, syncBulkChunk, now, func(ev *forwarder.SyncEvent) { evs = append(evs, *ev) })
		// The chunk leaves before any update the worker makes once its
		// lock is free: sent after, an older copy of an entry would
		// overwrite the newer update at the peer (an ESTABLISHED entry
		// back to SYN_RECV, an ended connection back). sendMu is taken
		// under w.mu only here; nothing takes w.mu under sendMu.
		r.sendMu.Lock()
		w.mu.Unlock()
		p.held = true
		for i := range evs {
			p.add(&evs[i])
		}
		p.flush()
		p.held = false
		r.sendMu.Unlock()
		if cursor < 0 && wi+1 < len(r.d.workers) {
			wi, cursor = wi+1, 0 // the next worker's table
		}
		n += len(evs)
		if p.sent >= syncBulkBurst {
			p.sent = 0
			select {
			case <-ctx.Done():
				return
			case <-time.After(syncBulkPause):
			}
		}
	}
	p.flush()
	r.sendBulkDone(peer, id, uint64(n))
	r.log.Info("ha.sync: connection table sent to a peer", "peer", peer.Addr(), "entries", n)
}

// receive reads, verifies and applies the peers' messages until the
// socket closes; the bulk answers it starts are counted in wg.
func (r *syncRun) receive(ctx context.Context, wg *sync.WaitGroup) {
	codec, _ := connsync.NewCodec(r.key)
	windows := make(map[netip.Addr]*connsync.Window, len(r.peers))
	for _, p := range r.peers {
		windows[p.Addr()] = &connsync.Window{}
	}
	// Room for more than any sync datagram, so that a longer one is
	// seen whole-or-truncated as too long, not read cut short and failed
	// on its MAC (which says "the peer's key differs" and holds
	// preemption for its bulk copy).
	buf := make([]byte, 2*connsync.MaxDatagram)
	var entries [connsync.MaxEntries]connsync.Entry
	for {
		n, from, err := r.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("ha.sync: receiving stopped", "err", err)
			}
			return
		}
		w := windows[from.Addr()]
		if w == nil || from.Port() != connsync.Port {
			r.reject(rejUnknownPeer, from, nil)
			continue
		}
		if n > connsync.MaxDatagram {
			r.reject(rejMalformed, from, fmt.Errorf("a datagram of %d bytes or more, longer than any sync message (%d)", n, connsync.MaxDatagram))
			continue
		}
		h, payload, err := codec.Open(buf[:n])
		switch {
		case errors.Is(err, connsync.ErrMAC):
			// From a configured peer's address and port: its key
			// differs (requestBulk holds preemption meanwhile).
			r.badMACAt.Store(int64(max(r.monotonic(), 1)))
			r.bulkMu.Lock()
			r.badMACFrom = from.Addr()
			r.bulkMu.Unlock()
			r.reject(rejBadMAC, from, err)
			continue
		case err != nil:
			r.reject(rejMalformed, from, err)
			continue
		case h.Sender != from.Addr():
			r.reject(rejUnknownPeer, from, fmt.Errorf("sender %v in the message", h.Sender))
			continue
		case h.Count > len(entries):
			r.reject(rejMalformed, from, nil)
			continue
		}
		if now := time.Now().UnixNano(); !w.Check(&h, now) {
			r.rejectStale(from, h.Time, now)
			continue
		}
		r.received.Add(1)
		switch h.Type {
		case connsync.TypeUpdate, connsync.TypeBulk:
			k := 0
			for i := 0; i < h.Count; i++ {
				if e, ok := connsync.EntryAt(payload, i); ok {
					entries[k] = e
					k++
				} else {
					r.entries[forwarder.SyncInvalid].Add(1)
				}
			}
			now := r.d.clock().UnixNano()
			var touched uint64 // workers with kernel flows an entry may have taken back
			for i := 0; i < k; i++ {
				wi := r.d.workerIndex(entries[i].CIP)
				w := r.d.workers[wi]
				w.mu.Lock()
				res := w.fw.ApplySync(&entries[i], now)
				w.mu.Unlock()
				if w.kflows != nil {
					touched |= 1 << (wi % 64) // at most forwarder.MaxWorkers (64) workers
				}
				r.entries[res].Add(1)
				if res == forwarder.SyncUnknownService || res == forwarder.SyncUnknownServer {
					r.noteMismatch(from.Addr(), &entries[i], res)
				}
			}
			// Write the flows ApplySync took back from the kernel now, once
			// per datagram and worker: a backup reads no frames, so they
			// waited for followFlows (50 ms), and a bulk answer or two
			// (160k entries/s each) took back more in that time than the
			// forwarder keeps, which turned kernel flows off for good.
			for i, w := range r.d.workers {
				if touched&(1<<(i%64)) != 0 && w.kflows != nil {
					w.mu.Lock()
					r.d.flushKernelFlows(w, w.kflows)
					w.mu.Unlock()
				}
			}
			if h.Type == connsync.TypeBulk {
				// What arrived, as the sender counts it (BulkDone),
				// entries refused here included.
				r.fromPeer[from.Addr()] += uint64(h.Count)
				r.answerAt.Store(int64(max(r.monotonic(), 1)))
			}
		case connsync.TypeBulkRequest:
			r.bulkMu.Lock()
			busy := r.serving[from.Addr()]
			r.serving[from.Addr()] = true
			r.bulkMu.Unlock()
			if !busy {
				// Busy: the requester asks again every
				// syncBulkRetry, and the next answer carries the
				// number it asks with then.
				id, _ := connsync.RequestOf(payload)
				// Counted in Serve's wait, as the receiver is (which
				// holds a count, so the Add is safe during a Wait).
				wg.Add(1)
				go func() { defer wg.Done(); r.serveBulk(ctx, from, id) }()
			}
		case connsync.TypeBulkDone:
			r.bulkFinished(from.Addr(), r.fromPeer[from.Addr()], connsync.BulkEndOf(payload))
			r.fromPeer[from.Addr()] = 0
		}
	}
}

// reject counts a dropped message (logging the first of each reason).
func (r *syncRun) reject(reason int, from netip.AddrPort, err error) {
	if n := r.rejected[reason].Add(1); r.rejectLogged[reason].Allow(rejectLogEvery) {
		r.log.Warn("ha.sync: message dropped", "reason", control.SyncRejectReasons[reason], "from", from, "err", err, "dropped", n)
	}
}

// skewLog is rejectLogged's slot for clocks that differ.
const skewLog = 4

// rejectLogEvery spaces the warnings of one reason: the first at once,
// then at most one a minute, with the count so far. Logged only once per
// run, a key changed on one director a day after the start (or a clock
// that drifted) showed in the counter alone.
const rejectLogEvery = time.Minute

// rejectStale counts a message the replay window dropped. One sealed
// more than connsync.MaxSkew from this director's clock is no replay but
// a clock that differs: every message of that peer is dropped until the
// clocks agree, which the log must say (a "replay" without a cause sent
// operators looking for an attacker), with the offset.
func (r *syncRun) rejectStale(from netip.AddrPort, sealed, now int64) {
	off := time.Duration(sealed - now)
	if off >= -connsync.MaxSkew && off <= connsync.MaxSkew {
		r.reject(rejReplay, from, nil)
		return
	}
	if n := r.rejected[rejReplay].Add(1); r.rejectLogged[skewLog].Allow(rejectLogEvery) {
		r.log.Warn("ha.sync: message dropped: its timestamp is more than "+connsync.MaxSkew.String()+
			" off this director's clock: the directors' clocks differ (synchronise them, e.g. NTP; until then that peer's messages are dropped), or an old message is replayed; counted as replay",
			"from", from, "offset", off.Round(time.Millisecond), "dropped", n)
	}
}

// serve runs the receiver and the bulk request until ctx ends, then
// closes the socket (the workers send updates themselves).
func (r *syncRun) serve(ctx context.Context, wg *sync.WaitGroup) {
	r.checkReadBuffer()
	wg.Add(2)
	go func() { defer wg.Done(); r.receive(ctx, wg) }()
	go func() { defer wg.Done(); r.requestBulks(ctx) }()
	go func() { <-ctx.Done(); r.conn.Close() }()
}

// checkReadBuffer logs a sync socket whose receive buffer is smaller than
// asked (net.core.rmem_max caps it silently), or could not be set: a
// bulk answer's bursts overflow a small one, and the copy is asked for
// again, or released incomplete.
func (r *syncRun) checkReadBuffer() {
	b, ok := r.conn.(connsync.BufferReporter)
	if !ok {
		return
	}
	switch got, err := b.ReadBuffer(); {
	case err != nil:
		r.log.Warn("ha.sync: the sync socket's receive buffer could not be set: bulk copies may lose datagrams", "want", connsync.ReadBuffer, "err", err)
	case got > 0 && got < connsync.ReadBuffer:
		r.log.Warn("ha.sync: the sync socket's receive buffer is smaller than asked, capped by net.core.rmem_max: bulk copies may lose datagrams and be asked for again (sysctl net.core.rmem_max="+fmt.Sprint(connsync.ReadBuffer)+")",
			"bytes", got, "want", connsync.ReadBuffer)
	}
}

// status is the sync side of the HA status (nil-safe).
func (r *syncRun) status() *control.SyncStatus {
	if r == nil {
		return nil
	}
	s := &control.SyncStatus{Sent: r.sent.Load(), SendErrors: r.sendErrors.Load(), Received: r.received.Load(),
		Rejected: map[string]uint64{}, Entries: map[string]uint64{}}
	for _, w := range r.d.workers {
		s.Dropped += w.fw.SyncDropped() // each worker's event buffer
	}
	for _, p := range r.peers {
		s.Peers = append(s.Peers, p.Addr())
	}
	for i, name := range control.SyncRejectReasons {
		s.Rejected[name] = r.rejected[i].Load()
	}
	for i, name := range forwarder.SyncResultNames {
		s.Entries[name] = r.entries[i].Load()
	}
	r.bulkMu.Lock()
	s.Bulk, s.BulkFrom, s.BulkEntries, s.BulkTook = r.bulkState, r.bulkFrom, r.bulkEntries, r.bulkTook.Seconds()
	r.bulkMu.Unlock()
	return s
}
