package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
)

// openSplitIn runs OpenSplit inside ns; the ports close at cleanup.
func openSplitIn(t testing.TB, ns netns.NsHandle, ifname string, cfg Config, n int, h ClientHash) []Port {
	t.Helper()
	var ports []Port
	if err := testutil.Do(ns, func() (err error) { ports, err = OpenSplit(ifname, cfg, n, h); return err }); err != nil {
		t.Fatalf("OpenSplit %s: %v", ifname, err)
	}
	t.Cleanup(func() {
		for _, p := range ports {
			p.Close()
		}
	})
	return ports
}

// splitVIPs are the VIPs of splitCases.
var splitVIPs = []netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("2001:2::100")}

// TestOpenSplitSorts sends splitCases through a veth to a split group of
// one and of two workers and checks, reading each socket on its own, that
// bare SYNs reach their client's SYN socket and everything else
// (SYN-ACK, ACK, data, fragments, ICMP, ARP, NDP) its main socket, both of
// the same worker (ClientHash.SplitIndex).
func TestOpenSplitSorts(t *testing.T) {
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var c4, c6 []netip.Addr
	for i := range 12 {
		c4 = append(c4, netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}))
		c6 = append(c6, netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(10 + i)}))
	}
	cases := splitCases(l2, c4, c6)
	// With trust, some clients completed a handshake before: their bare
	// SYNs reach their worker's main socket (the trusted lane).
	trusted := map[netip.Addr]bool{c4[0]: true, c4[5]: true, c6[1]: true}
	for _, tc := range []struct {
		n     int
		h     ClientHash
		trust bool
	}{
		{1, ClientHash{}, false},
		{2, ClientHash{}, false},
		{2, ClientHash{Bits4: 24, Bits6: 64}, false},
		{3, ClientHash{}, false},
		{1, ClientHash{}, true},
		{3, ClientHash{Bits4: 24, Bits6: 64}, true},
	} {
		t.Run(fmt.Sprintf("workers %d %+v trust %v", tc.n, tc.h, tc.trust), func(t *testing.T) {
			l := newPairLab(t)
			pa := openIn(t, l.nsA, "a0", Config{})
			filter, err := VIPFilter(splitVIPs)
			if err != nil {
				t.Fatal(err)
			}
			ports := openSplitIn(t, l.nsD, "d0", Config{Filter: filter}, tc.n, tc.h)
			if len(ports) != tc.n {
				t.Fatalf("OpenSplit made %d ports, want %d", len(ports), tc.n)
			}
			members := make([]Port, 3*tc.n)
			for i, p := range ports {
				sp := p.(*splitPort)
				if sp.lane == nil {
					t.Fatalf("the eBPF fanout program did not load: %v", sp.laneErr)
				}
				members[i], members[tc.n+i], members[2*tc.n+i] = sp.main, sp.syn, sp.tsyn
			}
			if tc.trust {
				var addrs []netip.Addr
				for a := range trusted {
					addrs = append(addrs, a)
				}
				// Any port of the group: the map is the group's.
				if err := ports[tc.n-1].(ClientTruster).TrustClients(addrs); err != nil {
					t.Fatal(err)
				}
			}
			out := make([]Frame, len(cases))
			for i, c := range cases {
				out[i].Data = append(append([]byte(nil), c.frame...), fmt.Sprintf("fanout-%03d", i)...)
			}
			got := whoRead(t, pa, members, out)
			counts := make([]int, 3*tc.n)
			for i, m := range got {
				counts[m]++
				want := cases[i].want(tc.h, tc.n)
				if tc.trust && cases[i].bareSYN && trusted[cases[i].client] {
					want += tc.n // the worker's trusted-SYN socket
				}
				if m != want {
					t.Errorf("%s reached member %d, want %d", cases[i].name, m, want)
				}
			}
			t.Logf("%d frames by member (main, SYN, then trusted-SYN sockets): %v", len(out), counts)
		})
	}
}

// TestSplitPortReadsBoth: a split Port returns the frames of both sockets;
// with both backlogged a batch takes at most 3/4 from main, and the SYN
// socket's share fills up when main runs dry.
func TestSplitPortReadsBoth(t *testing.T) {
	pa, pd := splitPair(t)
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	c := netip.MustParseAddr("198.18.1.10")
	const each = 32
	var out []Frame
	for i := range each {
		from, to := netip.AddrPortFrom(c, uint16(40000+i)), netip.AddrPortFrom(splitVIPs[0], 80)
		out = append(out,
			Frame{Data: framegen.TCP(l2, from, to, "S", 1, 0, nil)},
			Frame{Data: framegen.TCP(l2, from, to, "A", 2, 2, nil)})
	}
	write(t, pa, out...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := make([]Frame, 16)
	var syns, acks []int // per ReadBatch
	for sum(syns)+sum(acks) < 2*each {
		n, err := pd.ReadBatch(ctx, batch)
		if err != nil {
			t.Fatalf("ReadBatch after %d SYNs and %d ACKs: %v", sum(syns), sum(acks), err)
		}
		s, a := classifyBatch(t, batch[:n], nil)
		syns, acks = append(syns, s), append(acks, a)
	}
	if sum(syns) != each || sum(acks) != each {
		t.Fatalf("read %d SYNs and %d ACKs, want %d each", sum(syns), sum(acks), each)
	}
	// veth queues the frames in the writer's system call, so both queues
	// are full at the first read: 12 ACKs (3/4 of 16) and 4 SYNs. Should
	// the kernel ever deliver later, the first batch is not full and says
	// nothing about the shares.
	if acks[0]+syns[0] == len(batch) && (acks[0] != 12 || syns[0] != 4) {
		t.Errorf("first batch: %d ACKs and %d SYNs, want 12 and 4 (per batch %v / %v)", acks[0], syns[0], acks, syns)
	}
	t.Logf("ACKs per batch %v, SYNs per batch %v", acks, syns)
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// TestOpenSplitErrors: bad worker counts and a caller's fanout are
// configuration errors.
func TestOpenSplitErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		n    int
	}{
		{"no workers", Config{}, 0},
		{"fanout set", Config{Fanout: &Fanout{Group: 3}}, 2},
		{"negative SYN buffer", Config{SYNReadBuffer: -1}, 1},
	} {
		// Refused before any socket is opened: the interface need not exist.
		if _, err := OpenSplit("drlb-nosuch0", tc.cfg, tc.n, ClientHash{}); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", tc.name, err)
		}
	}
}

// TestSplitPortZeroAlloc: the split Port's steady state (read both
// sockets, write back) allocates nothing.
func TestSplitPortZeroAlloc(t *testing.T) {
	l := newPairLab(t)
	filter, err := VIPFilter(splitVIPs)
	if err != nil {
		t.Fatal(err)
	}
	pa := openIn(t, l.nsA, "a0", Config{Filter: filter})
	pd := openSplitIn(t, l.nsD, "d0", Config{Filter: filter}, 1, ClientHash{})[0]
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	from, to := netip.AddrPortFrom(netip.MustParseAddr("198.18.1.10"), 40000), netip.AddrPortFrom(splitVIPs[0], 80)
	out := []Frame{{Data: framegen.TCP(l2, from, to, "S", 1, 0, nil)}, {Data: framegen.TCP(l2, from, to, "A", 2, 2, nil)}}
	expectZeroAllocRoundTrip(t, pa, pd, out)
	// Only main sends: the SYN sockets have no send socket of their own.
	sp := pd.(*splitPort)
	if sp.main.out == nil || sp.syn.out != nil || sp.tsyn != nil && sp.tsyn.out != nil {
		t.Error("send sockets: want main's only")
	}
	if _, err := sp.syn.WriteBatch(out); !errors.Is(err, ErrBadConfig) {
		t.Errorf("WriteBatch on a SYN socket: %v, want ErrBadConfig", err)
	}
	st, err := pd.(StatsReporter).Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v", st)
}

// TestSplitPortReadsTrusted: a trusted client's bare SYNs come through the
// trusted-SYN socket, the others' through the SYN socket, and ReadBatch
// returns all of them and the ACKs, the SYNs of each batch in front.
func TestSplitPortReadsTrusted(t *testing.T) {
	known, stranger := netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.18.1.11")
	pa, pd := splitPair(t, known)
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	const each = 16
	var out []Frame
	for i := range each {
		to := netip.AddrPortFrom(splitVIPs[0], 80)
		for _, c := range []netip.Addr{known, stranger} {
			from := netip.AddrPortFrom(c, uint16(40000+i))
			out = append(out, Frame{Data: framegen.TCP(l2, from, to, "S", 1, 0, nil)}, Frame{Data: framegen.TCP(l2, from, to, "A", 2, 2, nil)})
		}
	}
	write(t, pa, out...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := make([]Frame, 16)
	got := map[string]int{}
	for got["syn"]+got["ack"] < 4*each {
		n, err := pd.ReadBatch(ctx, batch)
		if err != nil {
			t.Fatalf("ReadBatch after %v: %v", got, err)
		}
		syns, acks := classifyBatch(t, batch[:n], func(src netip.Addr) {
			if src == known {
				got["known"]++
			}
		})
		got["syn"] += syns
		got["ack"] += acks
	}
	if got["syn"] != 2*each || got["ack"] != 2*each || got["known"] != each {
		t.Fatalf("read %v, want %d SYNs (%d known) and %d ACKs", got, 2*each, each, 2*each)
	}
	sp := pd.(*splitPort)
	if st, err := sp.tsyn.Stats(); err != nil || st.RxDropped != 0 {
		t.Fatalf("trusted-SYN socket stats %+v, %v", st, err)
	}
	st, err := pd.(StatsReporter).Stats()
	if err != nil || st.TrustedSYNRxDropped != 0 || st.SYNRxDropped != 0 || st.RxDropped != 0 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

// TestSplitPortSmallBatchesShareSYNs: with main, SYN and trusted-SYN
// sockets all backlogged and one SYN slot per batch (batches of 4), the
// slot goes to each SYN socket in turn, so neither starves the other.
func TestSplitPortSmallBatchesShareSYNs(t *testing.T) {
	known, stranger := netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.18.1.11")
	pa, pd := splitPair(t, known)
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	to := netip.AddrPortFrom(splitVIPs[0], 80)
	var out []Frame
	for i := range 32 {
		out = append(out,
			Frame{Data: framegen.TCP(l2, netip.AddrPortFrom(known, uint16(40000+i)), to, "S", 1, 0, nil)},
			Frame{Data: framegen.TCP(l2, netip.AddrPortFrom(stranger, uint16(40000+i)), to, "S", 1, 0, nil)},
			Frame{Data: framegen.TCP(l2, netip.AddrPortFrom(stranger, uint16(50000+i)), to, "A", 2, 2, nil)})
	}
	write(t, pa, out...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := make([]Frame, 4) // 3 from main, one SYN slot
	got := map[string]int{}
	for range 8 {
		n, err := pd.ReadBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		classifyBatch(t, batch[:n], func(src netip.Addr) {
			if src == known {
				got["trusted"]++
			} else {
				got["untrusted"]++
			}
		})
	}
	if got["trusted"] < 2 || got["untrusted"] < 2 {
		t.Fatalf("SYNs read in 8 batches of 4: %v, want both kinds in turn", got)
	}
	t.Logf("SYNs read in 8 batches of 4: %v", got)
}

// splitPair opens a pair lab with a plain Port at a0 and a one-worker
// split Port at d0 with splitVIPs' filter, whose trusted map holds
// trusted.
func splitPair(t *testing.T, trusted ...netip.Addr) (pa, pd Port) {
	t.Helper()
	l := newPairLab(t)
	pa = openIn(t, l.nsA, "a0", Config{})
	filter, err := VIPFilter(splitVIPs)
	if err != nil {
		t.Fatal(err)
	}
	pd = openSplitIn(t, l.nsD, "d0", Config{Filter: filter}, 1, ClientHash{})[0]
	if len(trusted) > 0 {
		if err := pd.(ClientTruster).TrustClients(trusted); err != nil {
			t.Fatal(err)
		}
	}
	return pa, pd
}

// classifyBatch counts a read test's batch: its IPv4 TCP frames to
// splitVIPs[0] (not the NDP or ARP the kernel sends on its own), bare
// SYNs (passed to syn, if set, by source) and ACKs. A SYN after an ACK
// fails t: a batch puts the SYN sockets' frames first.
func classifyBatch(t *testing.T, batch []Frame, syn func(src netip.Addr)) (syns, acks int) {
	t.Helper()
	for _, f := range batch {
		d := f.Data
		if len(d) < 14+20+20 || d[12] != 0x08 || d[13] != 0x00 || d[14+9] != 6 || netip.AddrFrom4([4]byte(d[14+16:14+20])) != splitVIPs[0] {
			continue
		}
		if d[14+20+13]&0x12 != 0x02 {
			acks++
			continue
		}
		if syns++; acks > 0 {
			t.Errorf("a SYN after an ACK in a batch: the SYN sockets' frames come first")
		}
		if syn != nil {
			syn(netip.AddrFrom4([4]byte(d[14+12 : 14+16])))
		}
	}
	return syns, acks
}

// TestOpenSplitFailureClosesWake: an OpenSplit that fails after making
// its ports (here the kernel-flow filter cannot translate the caller's
// classic filter) closes every descriptor it opened, the ports' close
// eventfds too. Before, those leaked, one per worker made.
func TestOpenSplitFailureClosesWake(t *testing.T) {
	l := newPairLab(t)
	// Valid classic BPF the kernel takes, with an extension the eBPF
	// translation does not have.
	filter, err := bpf.Assemble([]bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtLen}, bpf.RetA{}})
	if err != nil {
		t.Fatal(err)
	}
	eventfds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:[eventfd]" {
				n++
			}
		}
		return n
	}
	before := eventfds()
	err = testutil.Do(l.nsD, func() error {
		ports, err := OpenSplit("d0", Config{Filter: filter, KernelFlows: true}, 2, ClientHash{})
		for _, p := range ports {
			p.Close()
		}
		return err
	})
	if err == nil {
		t.Skip("the kernel-flow filter took the classic filter: nothing failed")
	}
	t.Logf("OpenSplit: %v", err)
	if after := eventfds(); after != before {
		t.Fatalf("%d eventfds open after a failed OpenSplit, %d before", after, before)
	}
}
