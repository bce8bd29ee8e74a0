package link

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
)

// wantVIPDrop is VIPDrop's definition: an untagged IPv4 or IPv6 frame to
// mac whose destination address is one of vips, long enough to hold it.
func wantVIPDrop(f []byte, mac net.HardwareAddr, vips []netip.Addr) bool {
	if len(f) < 14+20 || !bytes.Equal(f[0:6], mac) {
		return false
	}
	switch {
	case f[12] == 0x08 && f[13] == 0x00:
		return slices.Contains(vips, netip.AddrFrom4([4]byte(f[14+16:])))
	case f[12] == 0x86 && f[13] == 0xdd:
		return len(f) >= 14+40 && slices.Contains(vips, netip.AddrFrom16([16]byte(f[14+24:])))
	}
	return false
}

// TestVIPDropProgram runs the tc program in the kernel (BPF_PROG_TEST_RUN)
// on splitCases (TCP, UDP, fragments, ICMP, ARP, NDP, tagged frames) and
// thousands of truncated and corrupted copies, each also to another MAC,
// and checks every verdict against wantVIPDrop; a MAC with high bits set
// catches a sign-extended compare. Then a VIP removed by SetVIPs is no
// longer dropped.
func TestVIPDropProgram(t *testing.T) {
	testutil.NeedRoot(t)
	_, frames := mutatedSplitCases(rand.New(rand.NewPCG(5, 6)), 60, func([]byte) int { return 14 })
	const drop, next = tcxDrop, 1<<32 + tcxNext // the run returns the verdict as a uint32
	for _, mac := range []net.HardwareAddr{{2, 0, 0, 0, 0, 2}, {0x82, 0x81, 0x80, 0xff, 0xfe, 0x9a}} {
		d, err := loadVIPDrop(mac, splitVIPs, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		verdicts := map[bool]int{}
		for _, f := range frames {
			for _, dst := range []net.HardwareAddr{mac, {2, 0, 0, 0, 0, 3}} {
				g := append([]byte(nil), f...)
				copy(g[0:6], dst)
				ret, _, err := d.prog.Test(g)
				if err != nil && len(g) < 14+40 {
					continue // the kernel builds no test skb shorter than its IP header
				}
				if err != nil {
					t.Fatalf("test run (%d bytes): %v", len(g), err)
				}
				want := wantVIPDrop(g, mac, splitVIPs)
				if want && ret != drop || !want && ret != next {
					t.Fatalf("MAC %v, % x: verdict %d, want drop %v", mac, g, int32(ret), want)
				}
				verdicts[want]++
			}
		}
		if verdicts[true] < 100 || verdicts[false] < 100 {
			t.Fatalf("MAC %v: %d frames dropped, %d not: the cases do not exercise both", mac, verdicts[true], verdicts[false])
		}
		if err := d.SetVIPs(splitVIPs[1:]); err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			g := append([]byte(nil), f...)
			copy(g[0:6], mac)
			ret, _, err := d.prog.Test(g)
			if err != nil && len(g) < 14+40 {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := wantVIPDrop(g, mac, splitVIPs[1:]); want && ret != drop || !want && ret != next {
				t.Fatalf("after SetVIPs: % x: verdict %d, want drop %v", g, int32(ret), want)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.SetVIPs(splitVIPs); !errors.Is(err, ErrVIPDropClosed) {
			t.Fatalf("SetVIPs after Close: %v, want ErrVIPDropClosed", err)
		}
	}
}

// TestVIPDropAttached sends frames to a VIP through a veth: with the drop
// attached the director's packet socket still reads every one and the IP
// stack receives none (Ip InReceives stays), frames to an address that is
// no VIP still reach it; once closed the stack sees VIP frames again.
func TestVIPDropAttached(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openIn(t, l.nsD, "d0", Config{})
	vip := splitVIPs[0]
	var d *VIPDrop
	if err := testutil.Do(l.nsD, func() error {
		var err error
		d, err = AttachVIPDrop("d0", macD0, splitVIPs, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const n = 50
	send := func(dst netip.Addr, marker string) (read, received int) {
		t.Helper()
		before := ipInReceives(t, l)
		for range n {
			if _, err := pa.WriteBatch([]Frame{{Data: udpFrame(-1, dst, marker)}}); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		buf := make([]Frame, 16)
		for i := range buf {
			buf[i].Data = make([]byte, 2048)
		}
		for read < n && ctx.Err() == nil {
			k, err := pd.ReadBatch(ctx, buf)
			if err != nil && ctx.Err() == nil {
				t.Fatal(err)
			}
			for _, f := range buf[:k] {
				if bytes.Contains(f.Data, []byte(marker)) {
					read++
				}
				f.Data = f.Data[:cap(f.Data)]
			}
			for i := range buf {
				buf[i].Data = buf[i].Data[:cap(buf[i].Data)]
			}
		}
		time.Sleep(50 * time.Millisecond) // the stack has had them too
		return read, ipInReceives(t, l) - before
	}
	if read, got := send(vip, "vip-dropped"); read != n || got > n/5 {
		t.Fatalf("with the drop: the socket read %d of %d VIP frames, the IP stack received %d (want none)", read, n, got)
	}
	other := netip.MustParseAddr("198.18.0.200")
	if read, got := send(other, "not-a-vip"); read != n || got < n {
		t.Fatalf("frames to a non-VIP: the socket read %d of %d, the IP stack received %d (want all)", read, n, got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if read, got := send(vip, "vip-again"); read != n || got < n {
		t.Fatalf("after Close: the socket read %d of %d VIP frames, the IP stack received %d (want all)", read, n, got)
	}
}

// ipInReceives is Ip InReceives of lab's director namespace: the IPv4
// packets its IP stack took in.
func ipInReceives(t *testing.T, l pairLab) int {
	t.Helper()
	var v int
	err := testutil.Do(l.nsD, func() error {
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		defer f.Close()
		var names []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 || fields[0] != "Ip:" {
				continue
			}
			if names == nil {
				names = fields
				continue
			}
			i := slices.Index(names, "InReceives")
			if i < 0 || i >= len(fields) {
				return errors.New("no Ip InReceives in snmp")
			}
			v, err = strconv.Atoi(fields[i])
			return err
		}
		return errors.New("no Ip lines in snmp")
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
