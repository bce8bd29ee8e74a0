package link

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteBatchCountsRefused: frames the kernel refuses on the way out
// (here EMSGSIZE from an AF_UNIX datagram socketpair standing in for the
// packet socket), and one WriteBatch cannot send (too short), count in
// Stats.TxFailed, every one of them: WriteBatch returns only the first
// error of a batch, and the forwarder counted them all as forwarded.
// Before, only a full queue (ENOBUFS) was counted (TxDropped).
func TestWriteBatchCountsRefused(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	p := &afpacket{ifname: "test", out: &rawPacketConn{fd: fds[0]}}
	defer p.out.Close()
	p.tx.init(8)
	p.tx.fn = p.tx.send
	small, big := make([]byte, 100), make([]byte, 30000)
	frames := []Frame{{Data: small}, {Data: big}, {Data: small}, {Data: big}, {Data: small}, {Data: small[:10]}}
	sent, err := p.WriteBatch(frames)
	st := p.stats.snapshot()
	if sent != 3 || err == nil {
		t.Fatalf("sent %d of %d (err %v), want 3 and an error", sent, len(frames), err)
	}
	if st.TxFailed != 3 || st.TxDropped != 0 {
		t.Errorf("3 frames not sent: TxFailed %d, TxDropped %d; want 3 and 0", st.TxFailed, st.TxDropped)
	}
}
