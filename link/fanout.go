package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// ErrFanout is wrapped by the errors of ClientHash.
var ErrFanout = errors.New("link: client hash fanout")

// ClientHash spreads a fanout group's frames over its sockets by client
// address, so that several workers (one per core, each with its own
// connection table) share an interface and every frame of a client reaches
// the same worker: its connections, its persistence template, all the
// fragments of its datagrams, and the ICMP errors routers send about them
// (which are sorted by the client the quoted packet was sent to, not by the
// router that sent them). The kernel's own fanout hash cannot do that: it
// hashes ports, which fragments and ICMP errors lack.
//
// Only the leading Bits4 bits of an IPv4 client address (Bits6 of IPv6)
// count, so that clients sharing a persistence template (a persistence
// netmask shorter than the address) also share a worker. 0 means the whole
// address.
//
// Program is the classic BPF fanout program (PACKET_FANOUT_CBPF) the kernel
// runs per frame; Sum computes the same hash in Go, for frames that come
// from elsewhere (connection sync). A socket's index is Sum % members, in
// the order the sockets joined the group.
type ClientHash struct {
	Bits4, Bits6 int
}

// Offsets the hash reads, from the network header.
const (
	ipv4Src       = 12
	ipv4Proto     = 9
	ipv6Src       = 8
	ipv6Next      = 6
	ipv6Len       = 40
	icmpHeaderLen = 8
	protoICMP     = 1
	protoTCP      = 6
	ipv4FragField = 6 // flags and fragment offset
	tcpFlags      = 13
	ipv6HopByHop  = 0
	ipv6Routing   = 43
	ipv6DestOpts  = 60
)

// The split's SYN test: a bare SYN has SYN set and ACK clear; any fragment
// bit (MF or an offset) makes an IPv4 packet "not a bare SYN", so that all
// of a datagram's fragments reach the same socket, in order.
const (
	tcpSYN       = 0x02
	tcpACK       = 0x10
	ipv4FragBits = 0x3fff
)

// skfNetOff is SKF_NET_OFF: a classic BPF load at skfNetOff+k reads byte k
// of the network header. A fanout program runs before the packet socket
// pushes the link-layer header back, so absolute offsets would depend on
// the path the frame took; these do not.
const skfNetOff = -0x100000

// hashMul is the multiplier of the final mix (2^32 / golden ratio, odd).
const hashMul = 0x9e3779b1

func (h ClientHash) masks() (m4 uint32, m6 [4]uint32, err error) {
	b4, b6 := h.Bits4, h.Bits6
	if b4 == 0 {
		b4 = 32
	}
	if b6 == 0 {
		b6 = 128
	}
	if b4 < 0 || b4 > 32 || b6 < 0 || b6 > 128 {
		return 0, m6, fmt.Errorf("%w: prefix lengths /%d and /%d, want 0..32 and 0..128", ErrFanout, h.Bits4, h.Bits6)
	}
	m4 = prefixMask(b4)
	for i := range m6 {
		m6[i] = prefixMask(min(max(b6-32*i, 0), 32))
	}
	return m4, m6, nil
}

func prefixMask(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

// Sum is the hash Program computes for a frame from (or an ICMP error
// about a packet to) client a. It panics on bad prefix lengths; Program
// reports them.
func (h ClientHash) Sum(a netip.Addr) uint32 {
	m4, m6, err := h.masks()
	if err != nil {
		panic(err)
	}
	a = a.Unmap()
	var x uint32
	if a.Is4() {
		b := a.As4()
		x = binary.BigEndian.Uint32(b[:]) & m4
	} else {
		b := a.As16()
		for i := range m6 {
			x ^= binary.BigEndian.Uint32(b[4*i:]) & m6[i]
		}
	}
	x *= hashMul
	return x ^ x>>16
}

// Index is the member of an n-socket group that gets client a's frames.
func (h ClientHash) Index(a netip.Addr, n int) int {
	if n <= 1 {
		return 0
	}
	return int(h.Sum(a) % uint32(n))
}

// Program is the classic BPF program for PACKET_FANOUT_DATA.
func (h ClientHash) Program() ([]bpf.RawInstruction, error) {
	return h.program(skfNetOff, bpf.LoadExtension{Num: bpf.ExtProto}, 0)
}

// SplitIndex is the member of a split group of n workers (OpenSplit: the
// n main sockets first, then the n SYN sockets, then with the trusted lane
// the n trusted-SYN sockets) that the classic program gives a frame from
// client a: Index(a, n) for everything but a bare TCP SYN, n + Index(a, n)
// for a bare SYN (the eBPF program adds n more for a trusted client's).
// Non-IP frames go to member 0.
func (h ClientHash) SplitIndex(a netip.Addr, n int, bareSYN bool) int {
	i := h.Index(a, n)
	if bareSYN {
		i += max(n, 1)
	}
	return i
}

// splitProgram is the fanout program of a split group of n workers
// (SplitIndex).
func (h ClientHash) splitProgram(n int) ([]bpf.RawInstruction, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: a split group of %d workers", ErrFanout, n)
	}
	return h.program(skfNetOff, bpf.LoadExtension{Num: bpf.ExtProto}, n)
}

// program builds the hash program with network-header offsets from net and
// the ethertype from loadProto (the kernel's SKF_NET_OFF and protocol
// extension; a test's plain offsets for bpf.VM, which has neither). With
// split > 0 it returns SplitIndex's member instead of the hash: the hash
// modulo split, plus split for a bare SYN (scratch word 0 holds 0 or
// split; the kernel takes the result modulo the 2*split or 3*split
// members, which leaves it as it is).
func (h ClientHash) program(net int, loadProto bpf.Instruction, split int) ([]bpf.RawInstruction, error) {
	m4, m6, err := h.masks()
	if err != nil {
		return nil, err
	}
	off := func(k int) uint32 { return uint32(int32(net + k)) }
	var a cbpf
	if split > 0 {
		// The kernel refuses a program that may read a scratch word
		// never written.
		a.add(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	}
	a.add(loadProto)
	a.jeq(etherTypeIPv4, "v4", "")
	a.jeq(etherTypeIPv6, "v6", "other")
	a.label("other")
	a.add(bpf.RetConstant{Val: 0})

	// IPv4: an ICMP error (unreachable, time exceeded, parameter problem)
	// is hashed by the destination of the packet it quotes: the client.
	a.label("v4")
	if split > 0 {
		a.add(bpf.LoadAbsolute{Off: off(ipv4Proto), Size: 1})
		a.jeq(protoTCP, "", "v4hash")
		a.add(bpf.LoadAbsolute{Off: off(ipv4FragField), Size: 2})
		a.add(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: ipv4FragBits})
		a.jumps("v4hash", "")
		a.add(bpf.LoadMemShift{Off: off(0)})
		a.add(bpf.LoadIndirect{Off: off(tcpFlags), Size: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: tcpSYN | tcpACK})
		a.jeq(tcpSYN, "", "v4hash")
		a.add(bpf.LoadConstant{Dst: bpf.RegA, Val: uint32(split)})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
		a.label("v4hash")
	}
	a.add(bpf.LoadAbsolute{Off: off(ipv4Proto), Size: 1})
	a.jeq(protoICMP, "", "v4src")
	a.add(bpf.LoadMemShift{Off: off(0)})
	a.add(bpf.LoadIndirect{Off: off(0), Size: 1})
	a.jeq(3, "v4inner", "")
	a.jeq(4, "v4inner", "") // source quench: the forwarder takes it as an error too
	a.jeq(11, "v4inner", "")
	a.jeq(12, "v4inner", "v4src")
	a.label("v4inner")
	a.add(bpf.LoadIndirect{Off: off(icmpHeaderLen + 16), Size: 4})
	a.jmp("v4mask")
	a.label("v4src")
	a.add(bpf.LoadAbsolute{Off: off(ipv4Src), Size: 4})
	a.label("v4mask")
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m4})
	a.jmp("mix")

	// IPv6: ICMPv6 errors (types 1-4) right after the fixed header are
	// hashed by the quoted destination, everything else by the source.
	a.label("v6")
	if split > 0 {
		// Only TCP right after the fixed header: a SYN behind extension
		// headers (rare) is read from the main socket.
		a.add(bpf.LoadAbsolute{Off: off(ipv6Next), Size: 1})
		a.jeq(protoTCP, "", "v6hash")
		a.add(bpf.LoadAbsolute{Off: off(ipv6Len + tcpFlags), Size: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: tcpSYN | tcpACK})
		a.jeq(tcpSYN, "", "v6hash")
		a.add(bpf.LoadConstant{Dst: bpf.RegA, Val: uint32(split)})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
		a.label("v6hash")
	}
	a.add(bpf.LoadAbsolute{Off: off(ipv6Next), Size: 1})
	a.jeq(protoICMPv6, "", "v6ext")
	a.add(bpf.LoadAbsolute{Off: off(ipv6Len), Size: 1})
	a.add(bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: 4})
	a.jumps("v6src", "")
	a.add(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 1})
	a.jumps("", "v6src")
	a.words6(off(ipv6Len+icmpHeaderLen+24), m6)
	a.jmp("mix")
	// An ICMPv6 error behind one hop-by-hop, routing or destination
	// options header (the forwarder walks any number of them; one covers
	// what routers send): the ICMPv6 header is (hdr ext len + 1) * 8
	// bytes further.
	a.label("v6ext")
	a.jeq(ipv6HopByHop, "v6ext1", "")
	a.jeq(ipv6Routing, "v6ext1", "")
	a.jeq(ipv6DestOpts, "v6ext1", "v6src")
	a.label("v6ext1")
	a.add(bpf.LoadAbsolute{Off: off(ipv6Len), Size: 1})
	a.jeq(protoICMPv6, "", "v6src")
	a.add(bpf.LoadAbsolute{Off: off(ipv6Len + 1), Size: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 3})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: ipv6Len})
	a.add(bpf.TAX{})
	a.add(bpf.LoadIndirect{Off: off(0), Size: 1})
	a.add(bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: 4})
	a.jumps("v6src", "")
	a.add(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 1})
	a.jumps("", "v6src")
	a.words6x(off(icmpHeaderLen+24), m6)
	a.jmp("mix")
	a.label("v6src")
	a.words6(off(ipv6Src), m6)

	a.label("mix")
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: hashMul})
	a.add(bpf.TAX{})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16})
	a.add(bpf.ALUOpX{Op: bpf.ALUOpXor})
	if split > 0 {
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(split)})
		a.add(bpf.LoadScratch{Dst: bpf.RegX, N: 0})
		a.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	}
	a.add(bpf.RetA{})
	return a.assemble()
}

// words6 leaves in A the masked words of the IPv6 address at off, xored.
func (a *cbpf) words6(off uint32, m6 [4]uint32) {
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 0})
	for i, m := range m6 {
		if m == 0 {
			continue
		}
		a.add(bpf.LoadAbsolute{Off: off + uint32(4*i), Size: 4})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
		a.add(bpf.ALUOpX{Op: bpf.ALUOpXor})
		a.add(bpf.TAX{})
	}
	a.add(bpf.TXA{})
}

// words6x is words6 for the address at X+off: X holds the offset, so
// the xor accumulates in scratch memory (M[1], the offset in M[2]).
func (a *cbpf) words6x(off uint32, m6 [4]uint32) {
	a.add(bpf.StoreScratch{Src: bpf.RegX, N: 2})
	a.add(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: 1})
	for i, m := range m6 {
		if m == 0 {
			continue
		}
		a.add(bpf.LoadScratch{Dst: bpf.RegX, N: 2})
		a.add(bpf.LoadIndirect{Off: off + uint32(4*i), Size: 4})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: m})
		a.add(bpf.LoadScratch{Dst: bpf.RegX, N: 1})
		a.add(bpf.ALUOpX{Op: bpf.ALUOpXor})
		a.add(bpf.StoreScratch{Src: bpf.RegA, N: 1})
	}
	a.add(bpf.LoadScratch{Dst: bpf.RegA, N: 1})
}

// cbpf is a classic BPF assembler with labels, for forward jumps.
type cbpf struct {
	ins    []bpf.Instruction
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at           int
	jt, jf, jump string
}

func (a *cbpf) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *cbpf) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

// jeq compares A with v and goes to label jt or jf ("": the next one).
func (a *cbpf) jeq(v uint32, jt, jf string) {
	a.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: v})
	a.jumps(jt, jf)
}

// jumps sets the targets of the conditional jump just added.
func (a *cbpf) jumps(jt, jf string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins) - 1, jt: jt, jf: jf})
}

func (a *cbpf) jmp(to string) {
	a.add(bpf.Jump{})
	a.fixups = append(a.fixups, fixup{at: len(a.ins) - 1, jump: to})
}

func (a *cbpf) assemble() ([]bpf.RawInstruction, error) {
	skip := func(at int, to string) (uint32, error) {
		if to == "" {
			return 0, nil
		}
		t, ok := a.labels[to]
		if !ok || t <= at || t-at-1 > 255 {
			return 0, fmt.Errorf("%w: bad jump to %q", ErrFanout, to)
		}
		return uint32(t - at - 1), nil
	}
	for _, f := range a.fixups {
		switch i := a.ins[f.at].(type) {
		case bpf.Jump:
			s, err := skip(f.at, f.jump)
			if err != nil {
				return nil, err
			}
			i.Skip = s
			a.ins[f.at] = i
		case bpf.JumpIf:
			t, err := skip(f.at, f.jt)
			if err != nil {
				return nil, err
			}
			e, err := skip(f.at, f.jf)
			if err != nil {
				return nil, err
			}
			i.SkipTrue, i.SkipFalse = uint8(t), uint8(e)
			a.ins[f.at] = i
		}
	}
	return bpf.Assemble(a.ins)
}
