package forwarder

import (
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/connsync"
)

// FuzzApplySync applies arbitrary peers' entries (any op, protocol,
// kind, state, service port, real server, timeout; IPv4 and IPv6),
// mixed with frames and expiry, to a small table with a persistent
// service: ApplySync must never panic, and every real server's active,
// inactive and persistent counts must match the table after each step.
// connsync's fuzz targets stop at the MAC, which random bytes never pass.
func FuzzApplySync(f *testing.F) {
	f.Add([]byte{1, 0, 0, 2, 1, 1, 1, 0, 1, 5})
	f.Add([]byte{1, 0, 1, 6, 1, 0, 0, 0, 1, 30, 1, 0, 0, 2, 1, 1, 0, 0, 1, 30, 2, 0, 0, 2, 1, 1, 0, 0, 1, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := testConfig("rr", 3)
		cfg.Services[0].Persistence = 300 * time.Second // tcp :80
		cfg.MaxConns = 8                                // soon full
		fw := newForwarder(t, cfg, Options{})
		fw.EnableSync(64)
		now := t0
		ports := []uint16{80, 53, 0, 81}
		for ; len(b) >= 10; b = b[10:] {
			x := b[:10]
			e := connsync.Entry{Op: x[0] % 4, Proto: []uint8{6, 17, 6, 1}[x[1]%4], Kind: x[2] % 3, State: x[3] % 8,
				CIP: netip.AddrFrom4([4]byte{198, 18, 1, x[4] % 4}), VIP: vip, CPort: uint16(x[5] % 3),
				VPort: ports[x[6]%4], SvcPort: ports[x[7]%4], Real: netip.AddrFrom4([4]byte{198, 18, 0, 11 + x[8]%4}),
				Timeout: time.Duration(x[9]&0x3f) * 10 * time.Second}
			switch {
			case x[9]&0x80 != 0:
				e.VIP, e.CIP = vip6, netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 1, 15: x[4] % 4})
				e.Real = netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: 0x11 + x[8]%4})
				fw.ApplySync(&e, now)
			case x[9]&0x40 == 0:
				fw.ApplySync(&e, now)
			case x[0]%3 == 0:
				fw.Process(syn(netip.AddrPortFrom(e.CIP, 40000+e.CPort)), &Meta{Time: now})
			case x[0]%3 == 1:
				fw.Process(ack(netip.AddrPortFrom(e.CIP, 40000+e.CPort)), &Meta{Time: now})
			default:
				now += int64(x[9]&0x3f) * 20 * second
				fw.Tick(now, 1<<20)
			}
			fw.ResetSyncEvents()
			checkCounts(t, fw)
		}
	})
}
