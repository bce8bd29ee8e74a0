package link

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// DefaultTrustedClients is the size of a split group's map of trusted
// clients (an LRU map: when it is full, the client whose SYN was seen
// least recently leaves first). About 5 MiB of kernel memory.
const DefaultTrustedClients = 65536

// trustLane is a split group's fanout program in eBPF with the map of the
// clients it trusts: ClientHash's split program, translated, then one
// step more. A bare SYN from a trusted client goes to its worker's
// trusted-SYN socket (member 2n+i) instead of the SYN socket (n+i). Under
// a SYN flood from spoofed sources the SYN socket's queue overflows and
// the kernel drops SYNs there at random, the flood's and a legitimate
// client's alike; a client that has completed a handshake through the
// director (TrustClients) is served from a queue the flood does not
// reach. A director in direct routing never sees the server's SYN-ACK, so
// a blind attacker that sends an ACK after each spoofed SYN can get its
// addresses trusted too; their SYNs then fill the trusted-SYN queue, never
// the main one, so established traffic still does not queue behind a
// flood.
type trustLane struct {
	prog *ebpf.Program
	*trustedClients
	refs atomic.Int32 // ports sharing the lane; the last Close frees it
}

// trustedClients is the LRU map of trusted clients, as both lanes use it:
// the split group's fanout program (trustLane) and the AF_XDP port's XDP
// program look a bare SYN's source up in it, the director fills it
// (TrustClients).
type trustedClients struct {
	// mu keeps close from freeing the map under trust or trusted (a
	// worker's TrustClients racing its port's Close at shutdown).
	mu      sync.RWMutex
	clients *ebpf.Map // nil once closed
	added   atomic.Uint64
}

// newTrustedClients makes the map, of size entries.
func newTrustedClients(size int) (*trustedClients, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "drlb_trusted", Type: ebpf.LRUHash, KeySize: 16, ValueSize: 1, MaxEntries: uint32(size)})
	if err != nil {
		return nil, fmt.Errorf("trusted clients map: %w", err)
	}
	return &trustedClients{clients: m}, nil
}

// The trusted map's key: the address's 16 bytes as on the wire, IPv4
// mapped into IPv6 (::ffff:a.b.c.d), so that a program reading packet
// memory directly (XDP) could build it with plain copies.
type trustKey [16]byte

func newTrustKey(a netip.Addr) trustKey { return a.As16() }

// Stack offset of the key (below the 16 classic scratch words).
const trustKeySlot = -80

// loadTrustLane builds the map (size entries) and the eBPF split program
// of n workers for h.
func loadTrustLane(h ClientHash, n, size int) (*trustLane, error) {
	raw, err := h.splitProgram(n)
	if err != nil {
		return nil, err
	}
	insns, err := cbpfToEBPF(raw, "trust")
	if err != nil {
		return nil, err
	}
	tc, err := newTrustedClients(size)
	if err != nil {
		return nil, err
	}
	const (
		member = asm.R9 // the classic program's result, kept across the lookup
		ethV6  = 0x86dd // protocol, in host order
		mapped = 0xffff // bytes 10 and 11 of an IPv4-mapped address
	)
	// r0 is the member: main sockets below n, SYN sockets from n on (only
	// bare SYNs of IPv4 or IPv6 get there), trusted-SYN sockets from 2n.
	insns = append(insns,
		asm.JLT.Imm32(regA, int32(n), "out").WithSymbol("trust"),
		asm.Mov.Reg(member, regA),
		asm.LoadMem(regA, regCtx, skbProtocol, asm.Word),
		asm.HostTo(asm.BE, regA, asm.Half),
		asm.JEq.Imm32(regA, ethV6, "key6"),
		asm.StoreImm(asm.RFP, trustKeySlot, 0, asm.Word),
		asm.StoreImm(asm.RFP, trustKeySlot+4, 0, asm.Word),
		asm.StoreImm(asm.RFP, trustKeySlot+8, 0, asm.Half),
		asm.StoreImm(asm.RFP, trustKeySlot+10, mapped, asm.Half),
		asm.LoadAbs(skfNetOff+ipv4Src, asm.Word),
		asm.HostTo(asm.BE, regA, asm.Word), // back to wire order
		asm.StoreMem(asm.RFP, trustKeySlot+12, regA, asm.Word),
		asm.Ja.Label("lookup"),
	)
	for i := range 4 {
		ld := asm.LoadAbs(int32(skfNetOff+ipv6Src+4*i), asm.Word)
		if i == 0 {
			ld = ld.WithSymbol("key6")
		}
		insns = append(insns, ld, asm.HostTo(asm.BE, regA, asm.Word), asm.StoreMem(asm.RFP, int16(trustKeySlot+4*i), regA, asm.Word))
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, tc.clients.FD()).WithSymbol("lookup"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, trustKeySlot),
		asm.FnMapLookupElem.Call(),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.Mov.Reg(regA, member),
		asm.JEq.Imm(asm.R1, 0, "out"),
		asm.Add.Imm32(regA, int32(n)), // trusted: the same worker's trusted-SYN socket
		asm.Return().WithSymbol("out"),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "drlb_fanout", Type: ebpf.SocketFilter, License: "MIT", Instructions: insns})
	if err != nil {
		tc.close()
		return nil, fmt.Errorf("eBPF fanout program: %w", err)
	}
	return &trustLane{prog: prog, trustedClients: tc}, nil
}

// trust puts addrs in the map (again: an LRU map keeps the ones put or
// looked up lately).
func (t *trustedClients) trust(addrs []netip.Addr) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.clients == nil {
		return ErrClosed
	}
	one := uint8(1)
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		if err := t.clients.Put(newTrustKey(a), one); err != nil {
			return fmt.Errorf("trusted clients map: %w", err)
		}
		t.added.Add(1)
	}
	return nil
}

// trusted reports whether a is in the map (tests).
func (t *trustedClients) trusted(a netip.Addr) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.clients == nil {
		return false
	}
	var v uint8
	return t.clients.Lookup(newTrustKey(a), &v) == nil
}

// closeProgram closes the program once every member has joined the group,
// which holds it from then on.
func (t *trustLane) closeProgram() {
	if t.prog != nil {
		_ = t.prog.Close()
		t.prog = nil
	}
}

// release drops one port's reference; the last frees the map.
func (t *trustLane) release() {
	if t.refs.Add(-1) == 0 {
		t.closeProgram()
		t.close()
	}
}

func (t *trustedClients) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clients != nil {
		_ = t.clients.Close()
		t.clients = nil
	}
}
