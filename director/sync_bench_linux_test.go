package director

import (
	"log/slog"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/testutil"
)

// BenchmarkSyncUpdates is what a worker's batch of table changes costs
// it since it sends their records itself, before the batch's frames
// (sync.go): packing, sealing (HMAC-SHA256) and one sendto per
// datagram and peer, over a real UDP socket in a namespace of the
// test's own, to one peer on a veth that reads them. Per batch of n
// records (20 fit a datagram).
func BenchmarkSyncUpdates(b *testing.B) {
	testutil.NeedRoot(b)
	ns := testutil.NewNS(b)
	self, peer := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	testutil.Veth(b, testutil.End{NS: ns, Name: "s0", Addr: netip.PrefixFrom(self, 24)}, testutil.End{NS: ns, Name: "s1", Addr: netip.PrefixFrom(peer, 24)})
	var conn, peerConn connsync.Conn
	if err := testutil.Do(ns, func() (err error) {
		if conn, err = connsync.ListenUDP(self); err != nil {
			return err
		}
		peerConn, err = connsync.ListenUDP(peer)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); peerConn.Close() })
	go func() { // the peer reads what comes (no port-unreachable answers)
		buf := make([]byte, connsync.MaxDatagram+connsync.MACLen)
		for {
			if _, _, err := peerConn.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	d := &Director{log: slog.New(slog.DiscardHandler)}
	r, err := newSync(d, &config.HASync{Peers: []netip.Addr{peer}}, conn, syncKey, self)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 20, 64} {
		b.Run("records="+strconv.Itoa(n), func(b *testing.B) {
			evs := make([]forwarder.SyncEvent, n)
			for i := range evs {
				evs[i] = forwarder.SyncEvent{Op: connsync.OpUpsert, State: 3, Real: netip.MustParseAddr("198.18.0.11"), Timeout: time.Minute}
				evs[i].Key.CPort = uint16(i)
			}
			p := r.updates()
			b.ReportAllocs()
			for b.Loop() {
				p.addAll(evs)
				p.flush()
			}
			if r.sendErrors.Load() != 0 {
				b.Fatalf("%d send errors", r.sendErrors.Load())
			}
		})
	}
}
