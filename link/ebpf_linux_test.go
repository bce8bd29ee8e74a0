package link

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"golang.org/x/net/bpf"
)

// TestTrustLaneProgramMatchesClassic runs the eBPF split program (the
// classic one translated, plus the trusted lane) in the kernel
// (BPF_PROG_TEST_RUN) on splitCases and on thousands of truncated and
// corrupted copies of them, and checks every result against the classic
// program in bpf.VM: the translation must not change a single decision,
// out-of-bounds loads included. Then a trusted client's bare SYNs move to
// its main member and nothing else moves.
func TestTrustLaneProgramMatchesClassic(t *testing.T) {
	testutil.NeedRoot(t)
	// The socket-filter test run refuses a frame shorter than its IP
	// header says (20 bytes for IPv4, 40 for IPv6): truncate after it.
	cases, frames := mutatedSplitCases(rand.New(rand.NewPCG(1, 2)), 40, func(f []byte) int {
		switch {
		case f[12] == 0x08 && f[13] == 0x00:
			return 14 + 20
		case f[12] == 0x86 && f[13] == 0xdd:
			return 14 + 40
		}
		return 14
	})
	c4, c6 := splitTestClients()
	for _, n := range []int{1, 2, 3} {
		for _, h := range []ClientHash{{}, {Bits4: 24, Bits6: 64}} {
			lane, err := loadTrustLane(h, n, 64)
			if err != nil {
				t.Fatal(err)
			}
			lane.refs.Store(1)
			t.Cleanup(lane.release)
			vm := vmSplitProgram(t, h, n)
			run := func(f []byte) int {
				got, _, err := lane.prog.Test(f)
				if err != nil {
					t.Fatalf("test run (%d bytes): %v", len(f), err)
				}
				return int(got) % (3 * n)
			}
			for i, f := range frames {
				want, err := vm.Run(f)
				if err != nil {
					t.Fatal(err)
				}
				if got := run(f); got != want%(2*n) {
					t.Fatalf("n %d %+v frame %d (%d bytes): eBPF member %d, classic %d", n, h, i, len(f), got, want%(2*n))
				}
			}
			if err := lane.trust([]netip.Addr{c4[1], c6[0]}); err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				want := c.want(h, n)
				if c.bareSYN && (c.client == c4[1] || c.client == c6[0]) {
					want += n // the trusted-SYN member
				}
				if got := run(c.frame); got != want {
					t.Errorf("n %d %+v trusted %s: member %d, want %d", n, h, c.name, got, want)
				}
			}
			if !lane.trusted(c4[1]) || lane.trusted(c4[0]) {
				t.Error("the map holds the wrong clients")
			}
		}
	}
}

// TestTrustLaneLRU: the map keeps the clients trusted lately when more
// come than it holds.
func TestTrustLaneLRU(t *testing.T) {
	testutil.NeedRoot(t)
	lane, err := loadTrustLane(ClientHash{}, 1, 16)
	if err != nil {
		t.Fatal(err)
	}
	lane.refs.Store(1)
	defer lane.release()
	var addrs []netip.Addr
	for i := range 200 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))
	}
	for _, a := range addrs {
		if err := lane.trust([]netip.Addr{a}); err != nil {
			t.Fatal(err)
		}
	}
	if !lane.trusted(addrs[len(addrs)-1]) {
		t.Error("the last client trusted is not in the map")
	}
	var k trustKey
	var v uint8
	n := 0
	for it := lane.clients.Iterate(); it.Next(&k, &v); {
		n++
	}
	if n > 16+16 { // the LRU map may hold a few more than asked per CPU list
		t.Errorf("the map holds %d clients, want about 16", n)
	}
	if lane.added.Load() != 200 {
		t.Errorf("added %d, want 200", lane.added.Load())
	}
}

// TestCBPFToEBPF checks each kind of classic instruction the translation
// knows against bpf.VM: small programs over a byte b of the IP header
// (the kernel's loads are at SKF_NET_OFF, the VM's at 14), run for every
// value of b, in the kernel (BPF_PROG_TEST_RUN) and in the VM.
func TestCBPFToEBPF(t *testing.T) {
	testutil.NeedRoot(t)
	const at = 1 // the TOS byte: nothing checks it
	ld := func(net int) bpf.Instruction { return bpf.LoadAbsolute{Off: uint32(int32(net + at)), Size: 1} }
	conds := []bpf.JumpTest{bpf.JumpEqual, bpf.JumpNotEqual, bpf.JumpGreaterThan, bpf.JumpLessThan,
		bpf.JumpGreaterOrEqual, bpf.JumpLessOrEqual, bpf.JumpBitsSet, bpf.JumpBitsNotSet}
	var progs []func(net int) []bpf.Instruction
	for _, c := range conds {
		progs = append(progs,
			func(net int) []bpf.Instruction {
				return []bpf.Instruction{ld(net), bpf.JumpIf{Cond: c, Val: 0x44, SkipFalse: 1}, bpf.RetConstant{Val: 1}, bpf.RetConstant{Val: 2}}
			},
			func(net int) []bpf.Instruction {
				return []bpf.Instruction{bpf.LoadConstant{Dst: bpf.RegX, Val: 0x44}, ld(net),
					bpf.JumpIfX{Cond: c, SkipTrue: 1}, bpf.RetConstant{Val: 1}, bpf.RetConstant{Val: 2}}
			})
	}
	for _, op := range []bpf.ALUOp{bpf.ALUOpAdd, bpf.ALUOpSub, bpf.ALUOpMul, bpf.ALUOpDiv, bpf.ALUOpOr, bpf.ALUOpAnd,
		bpf.ALUOpShiftLeft, bpf.ALUOpShiftRight, bpf.ALUOpMod, bpf.ALUOpXor} {
		progs = append(progs,
			func(net int) []bpf.Instruction {
				return []bpf.Instruction{ld(net), bpf.ALUOpConstant{Op: op, Val: 3}, bpf.RetA{}}
			},
			func(net int) []bpf.Instruction {
				// A op X with X from the packet: never 0 (for / and %),
				// below 32 (a longer shift is undefined in eBPF, and
				// the kernel's classic programs run as eBPF too).
				return []bpf.Instruction{ld(net), bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 31}, bpf.ALUOpConstant{Op: bpf.ALUOpOr, Val: 1}, bpf.TAX{},
					bpf.LoadConstant{Dst: bpf.RegA, Val: 0x9e3779b1}, bpf.ALUOpX{Op: op}, bpf.RetA{}}
			})
	}
	progs = append(progs,
		func(net int) []bpf.Instruction { // division and modulo by X = b&1, 0 half the time: classic BPF returns 0
			return []bpf.Instruction{ld(net), bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 1}, bpf.TAX{},
				bpf.LoadConstant{Dst: bpf.RegA, Val: 77}, bpf.ALUOpX{Op: bpf.ALUOpDiv}, bpf.TAX{},
				bpf.LoadConstant{Dst: bpf.RegA, Val: 78}, bpf.ALUOpX{Op: bpf.ALUOpMod}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 5}, bpf.RetA{}}
		},
		func(net int) []bpf.Instruction { // scratch, TXA
			return []bpf.Instruction{ld(net), bpf.StoreScratch{Src: bpf.RegA, N: 3}, bpf.LoadConstant{Dst: bpf.RegA, Val: 7},
				bpf.LoadScratch{Dst: bpf.RegX, N: 3}, bpf.TXA{}, bpf.RetA{}}
		},
		func(net int) []bpf.Instruction { // X = 4*(P[net]&0xf) keeps A; A = P[net+X+at]: byte 41, which varies with b
			return []bpf.Instruction{bpf.LoadConstant{Dst: bpf.RegA, Val: 5}, bpf.LoadMemShift{Off: uint32(int32(net))},
				bpf.ALUOpX{Op: bpf.ALUOpAdd}, bpf.StoreScratch{Src: bpf.RegA, N: 0},
				bpf.LoadIndirect{Off: uint32(int32(net + at)), Size: 1}, bpf.LoadScratch{Dst: bpf.RegX, N: 0},
				bpf.ALUOpX{Op: bpf.ALUOpXor}, bpf.RetA{}}
		},
		func(net int) []bpf.Instruction { // 2- and 4-byte loads, a jump
			return []bpf.Instruction{bpf.LoadAbsolute{Off: uint32(int32(net)), Size: 4},
				bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 1 << 16, SkipTrue: 1}, bpf.Jump{Skip: 1},
				bpf.RetConstant{Val: 9}, bpf.TAX{}, bpf.LoadAbsolute{Off: uint32(int32(net + 2)), Size: 2},
				bpf.ALUOpX{Op: bpf.ALUOpXor}, bpf.RetA{}}
		},
		func(net int) []bpf.Instruction { // out of bounds: the program ends, returning 0
			return []bpf.Instruction{bpf.LoadAbsolute{Off: uint32(int32(net + 4000)), Size: 1}, bpf.RetConstant{Val: 5}}
		},
	)
	frame := make([]byte, 14+60)
	frame[12], frame[13], frame[14] = 0x08, 0x00, 0x4a // IPv4 with 20 bytes of options
	for i, prog := range progs {
		raw, err := bpf.Assemble(prog(skfNetOff))
		if err != nil {
			t.Fatal(err)
		}
		insns, err := cbpfToEBPF(raw, "")
		if err != nil {
			t.Fatalf("program %d: %v", i, err)
		}
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "MIT", Instructions: insns})
		if err != nil {
			t.Fatalf("program %d: %v\n%v", i, err, insns)
		}
		vm, err := bpf.NewVM(prog(14))
		if err != nil {
			t.Fatal(err)
		}
		for b := range 256 {
			frame[14+at], frame[14+40+at] = byte(b), byte(b^0x5a)
			want, err := vm.Run(frame)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := p.Test(frame)
			if err != nil {
				t.Fatal(err)
			}
			if int(got) != want {
				t.Fatalf("program %d %v, byte %#x: eBPF %#x, classic %#x", i, prog(skfNetOff), b, got, want)
			}
		}
		p.Close()
	}
}

// TestTrustedClientsCloseRace: trusting clients while the map is closed
// (a worker's TrustClients at its port's Close) returns ErrClosed, never
// touches a freed map. Run with -race.
func TestTrustedClientsCloseRace(t *testing.T) {
	testutil.NeedRoot(t)
	for range 20 {
		tc, err := newTrustedClients(64)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				if err := tc.trust([]netip.Addr{netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})}); err != nil {
					done <- err
					return
				}
			}
		}()
		tc.close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("trust after close: %v, want ErrClosed", err)
		}
		if tc.trusted(netip.MustParseAddr("198.18.1.1")) {
			t.Fatal("a closed map says a client is trusted")
		}
	}
}

// splitTestClients are the clients of the program tests' splitCases.
func splitTestClients() (c4, c6 []netip.Addr) {
	return []netip.Addr{netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.19.200.7")},
		[]netip.Addr{netip.MustParseAddr("2001:2::1:10"), netip.MustParseAddr("2001:2:0:ff::7")}
}

// mutatedSplitCases returns splitCases of splitTestClients and the frames
// the program tests run: each case's frame and per copies of it with a
// byte past the Ethernet header changed, truncated to at least keep(frame)
// bytes, or both.
func mutatedSplitCases(rng *rand.Rand, per int, keep func([]byte) int) ([]splitCase, [][]byte) {
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	c4, c6 := splitTestClients()
	cases := splitCases(l2, c4, c6)
	var frames [][]byte
	for _, c := range cases {
		frames = append(frames, c.frame)
		k := keep(c.frame)
		for range per {
			f := append([]byte(nil), c.frame...)
			op := rng.IntN(3)
			if op != 0 {
				f[14+rng.IntN(min(len(f)-14, 80))] = byte(rng.Uint32())
			}
			if op != 1 {
				f = f[:k+rng.IntN(len(f)-k+1)]
			}
			frames = append(frames, f)
		}
	}
	return cases, frames
}
