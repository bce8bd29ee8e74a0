package link

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// smallSendPair is an AF_UNIX datagram socketpair whose first end, with
// a 4 KiB send buffer, stands in for a packet socket; the second end is
// closed at cleanup.
func smallSendPair(t *testing.T) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[1]) })
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	return fds
}

// TestWriteBatchCountsRefused: frames the kernel refuses on the way out
// (here EMSGSIZE from an AF_UNIX datagram socketpair standing in for the
// packet socket), and one WriteBatch cannot send (too short), count in
// Stats.TxFailed, every one of them: WriteBatch returns only the first
// error of a batch, and the forwarder counted them all as forwarded.
// Before, only a full queue (ENOBUFS) was counted (TxDropped).
func TestWriteBatchCountsRefused(t *testing.T) {
	fds := smallSendPair(t)
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

// TestWriteBatchCloseCountsSent: a Close that ends a WriteBatch waiting
// for room after part of a chunk left (here an AF_UNIX datagram
// socketpair with a small send buffer, never read, stands in for the
// packet socket) still reports those frames as sent. Before, WriteBatch
// returned only the earlier chunks' count with ErrClosed, so a caller
// resending what was not counted sent those frames twice.
func TestWriteBatchCloseCountsSent(t *testing.T) {
	fds := smallSendPair(t)
	// The port's receiving socket: a duplicate, so that Close leaves
	// fds[1] open to count what arrived.
	rfd, err := unix.Dup(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	p := &afpacket{ifname: "test", conn: &rawPacketConn{fd: rfd}, out: &rawPacketConn{fd: fds[0]}}
	p.tx.init(8)
	p.tx.fn = p.tx.send
	frames := make([]Frame, 16)
	for i := range frames {
		frames[i].Data = make([]byte, 1000)
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := p.WriteBatch(frames)
		done <- result{n, err}
	}()
	// Close once part of the batch arrived: the rest cannot (the
	// buffer stays full), so the writer is waiting for room.
	pfd := []unix.PollFd{{Fd: int32(fds[1]), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 30_000); n != 1 || err != nil {
		t.Fatalf("no frame arrived: poll %d, %v", n, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	got := 0
	buf := make([]byte, 2000)
	for {
		if _, _, err := unix.Recvfrom(fds[1], buf, unix.MSG_DONTWAIT); err != nil {
			break
		}
		got++
	}
	if got == 0 || got == len(frames) {
		t.Fatalf("%d of %d frames arrived, want some but not all", got, len(frames))
	}
	if r.n != got || !errors.Is(r.err, ErrClosed) {
		t.Fatalf("WriteBatch = %d, %v; %d frames were sent, want %d, ErrClosed", r.n, r.err, got, got)
	}
}

// TestFillTaggedBeyondMaxFrame: a frame whose 802.1Q tag the kernel
// stripped into auxdata is MaxFrame bytes or less only once its tag is
// back in; longer, it could be read whole but not written (WriteBatch
// refuses more than MaxFrame), so it counts as truncated, as a frame too
// long for the buffer does. Before, it came out at up to MaxFrame+4
// bytes.
func TestFillTaggedBeyondMaxFrame(t *testing.T) {
	vlan := cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxBytes(unix.TP_STATUS_VLAN_VALID, 100, 0))
	cases := []struct {
		name   string
		n      int // bytes received, without the virtio-net header
		tagged bool
		want   int // frame length; 0: counted as truncated
	}{
		{"untagged MaxFrame", MaxFrame, false, MaxFrame},
		{"tagged, MaxFrame with its tag", MaxFrame - vlanHeadroom, true, MaxFrame},
		{"tagged, one byte over with its tag", MaxFrame - vlanHeadroom + 1, true, 0},
		{"tagged MaxFrame", MaxFrame, true, 0},
		{"tagged small", 60, true, 64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &afpacket{}
			p.rx.init(1)
			p.rx.prepare(1)
			m := &p.rx.msgs[0]
			m.n = uint32(vnetHdrLen + c.n)
			m.hdr.SetControllen(0)
			if c.tagged {
				copy(p.rx.ctrl, vlan)
				m.hdr.SetControllen(len(vlan))
			}
			frames := make([]Frame, 1)
			k := p.fill(frames, 1)
			got := 0
			if k == 1 {
				got = len(frames[0].Data)
			}
			if got != c.want {
				t.Fatalf("frame of %d bytes (0: none), want %d", got, c.want)
			}
			if tr := p.stats.truncated.Load(); (tr == 1) != (c.want == 0) {
				t.Fatalf("Truncated %d", tr)
			}
		})
	}
}
