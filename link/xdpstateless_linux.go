package link

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// maxSYNBuckets bounds the buckets of all tables together (8 bytes each:
// 4 MiB, eight tables of mh's default size; IPv4 and IPv6 VIPs' tables
// share them), maxSYNServices the tables of each family; those that do
// not fit (SetStatelessSYNs says how many) and a VIP's every-port service
// (port 0) are left to drlb. An AF_PACKET
// worker's maps (one set per worker) get maxSYNBuckets divided among the
// workers, at least minWorkerSYNBuckets (two such tables, 1 MiB).
const (
	synTableBuckets     = 65537 // scheduler.DefaultTableSize (TestSYNTableBuckets)
	maxSYNBuckets       = 8 * synTableBuckets
	minWorkerSYNBuckets = 2 * synTableBuckets
	maxSYNServices      = 256
)

// synMaps are the XDP program's maps for stateless SYNs.
type synMaps struct {
	cfg   *ebpf.Map // [0]: on (u32), director MAC (6 bytes at 4)
	svc   *ebpf.Map // (IPv4 VIP, port) -> seed u64, bucket offset u32, buckets u32, hash port u32
	svc6  *ebpf.Map // (IPv6 VIP, port) -> the same (its buckets in tab too)
	tab   *ebpf.Map // bucket -> MAC (6 bytes; 0: drlb decides)
	count *ebpf.Map // per CPU: SYNs forwarded

	last    []SYNTable // what tab and svc hold
	buckets int        // tab's size
	left    int        // tables of last left to drlb for want of room
}

// synSvcKey and synSvcValue are the svc map's layout, synSvc6Key the
// svc6 map's key (IPv4-mapped VIPs are IPv4's: Unmap).
type synSvcKey struct {
	VIP  [4]byte
	Port [2]byte // network order
	_    [2]byte
}

type synSvc6Key struct {
	VIP  [16]byte
	Port [2]byte // network order
	_    [2]byte
}

type synSvcValue struct {
	Seed     uint64
	Off, N   uint32
	HashPort uint32
	_        uint32
}

// make makes the maps, with room for buckets buckets.
func (m *synMaps) make(buckets int) error {
	m.buckets = buckets
	var mk mapMaker
	m.cfg = mk.make(&ebpf.MapSpec{Name: "drlb_syncfg", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	m.svc = mk.make(&ebpf.MapSpec{Name: "drlb_synsvc", Type: ebpf.Hash, KeySize: 8, ValueSize: 24, MaxEntries: maxSYNServices})
	m.svc6 = mk.make(&ebpf.MapSpec{Name: "drlb_synsvc6", Type: ebpf.Hash, KeySize: 20, ValueSize: 24, MaxEntries: maxSYNServices})
	m.tab = mk.make(&ebpf.MapSpec{Name: "drlb_syntab", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: uint32(buckets)})
	m.count = mk.make(&ebpf.MapSpec{Name: "drlb_syncount", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	return mk.err
}

func (m *synMaps) close() {
	closeMaps(m.cfg, m.svc, m.svc6, m.tab, m.count)
	*m = synMaps{}
}

// set writes tables (those that fit, of a VIP's port) and then the switch:
// the program never sees a service whose buckets are not written yet.
// Unchanged tables are not written again. left is how many tables did
// not fit (the maps' buckets or services), left to drlb.
func (m *synMaps) set(on bool, mac net.HardwareAddr, tables []SYNTable) (left int, err error) {
	if len(mac) != 6 {
		return 0, fmt.Errorf("stateless SYNs: MAC %v is not a 6-byte Ethernet address", mac)
	}
	if !sameSYNTables(m.last, tables) {
		if err := m.writeTables(tables); err != nil {
			// Half-written tables must not stay on: off, best effort.
			_ = m.cfg.Put(uint32(0), [16]byte{})
			m.last = nil
			return 0, err
		}
	}
	var v [16]byte
	if on {
		v[0] = 1
	}
	copy(v[4:10], mac)
	return m.left, m.cfg.Put(uint32(0), v)
}

func (m *synMaps) writeTables(tables []SYNTable) error {
	// Services first removed, then buckets rewritten, then services put
	// back: while this runs the program sends those SYNs to drlb.
	if err := pruneMap[synSvcKey, synSvcValue](m.svc, "stateless SYN map", func(synSvcKey) bool { return false }); err != nil {
		return err
	}
	if err := pruneMap[synSvc6Key, synSvcValue](m.svc6, "stateless SYN map", func(synSvc6Key) bool { return false }); err != nil {
		return err
	}
	m.last, m.left = nil, 0
	off, services, services6 := 0, 0, 0
	// IPv4 VIPs' tables first: IPv6 ones, which share the buckets since
	// they came in, never take the room IPv4 had before.
	ordered := make([]SYNTable, 0, len(tables))
	for pass := range 2 {
		for _, t := range tables {
			if t.VIP.Unmap().Is4() == (pass == 0) {
				ordered = append(ordered, t)
			}
		}
	}
	for _, t := range ordered {
		vip := t.VIP.Unmap()
		if !vip.IsValid() || len(t.MACs) == 0 || t.Port == 0 {
			continue // left to drlb
		}
		count := &services
		if vip.Is6() {
			count = &services6
		}
		if off+len(t.MACs) > m.buckets || *count == maxSYNServices {
			m.left++ // left to drlb, for want of room
			continue
		}
		*count++
		keys := make([]uint32, len(t.MACs))
		vals := make([]uint64, len(t.MACs))
		for i, mac := range t.MACs {
			keys[i] = uint32(off + i)
			var b [8]byte
			copy(b[:6], mac[:])
			vals[i] = binary.LittleEndian.Uint64(b[:]) // the bytes in memory order
		}
		if _, err := m.tab.BatchUpdate(keys, vals, nil); err != nil {
			return fmt.Errorf("stateless SYN buckets: %w", err)
		}
		val := synSvcValue{Seed: t.Seed, Off: uint32(off), N: uint32(len(t.MACs))}
		if t.HashPort {
			val.HashPort = 1
		}
		var err error
		if vip.Is4() {
			key := synSvcKey{VIP: vip.As4()}
			binary.BigEndian.PutUint16(key.Port[:], t.Port)
			err = m.svc.Put(key, val)
		} else {
			key := synSvc6Key{VIP: vip.As16()}
			binary.BigEndian.PutUint16(key.Port[:], t.Port)
			err = m.svc6.Put(key, val)
		}
		if err != nil {
			return fmt.Errorf("stateless SYN map: %w", err)
		}
		off += len(t.MACs)
	}
	m.last = tables
	return nil
}

// sameSYNTables reports whether a and b are the same tables.
func sameSYNTables(a, b []SYNTable) bool {
	if len(a) != len(b) || a == nil != (b == nil) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.VIP != y.VIP || x.Port != y.Port || x.Seed != y.Seed || x.HashPort != y.HashPort || !slices.Equal(x.MACs, y.MACs) {
			return false
		}
	}
	return true
}

// sent sums the per-CPU counts.
func (m *synMaps) sent() (uint64, error) {
	var per []uint64
	if err := m.count.Lookup(uint32(0), &per); err != nil {
		return 0, fmt.Errorf("stateless SYN count: %w", err)
	}
	var n uint64
	for _, c := range per {
		n += c
	}
	return n, nil
}

// splitmix64's multipliers (scheduler/hash.go mix64); TestXDPStatelessSYNs
// checks the program's buckets against the forwarder's choice.
var mix64Mul1, mix64Mul2 uint64 = 0xbf58476d1ce4e5b9, 0x94d049bb133111eb

// instructions is the program's stateless-SYN block, entered with a bare
// IPv4 TCP SYN to a VIP: R2 data, R3 data_end, R5 data + IHL*4 (the TCP
// header at R5+14, its first 14 bytes in bounds), R7 the destination as
// loaded, ctx in the given register. It ends in XDP_TX, or jumps to
// "synlane" (R2 and R3 clobbered). Its tail, from "synnotours" (the
// MACs rewritten, counted, XDP_TX), is instructions6's too.
//
//	not version 4 with IHL >= 5 -> synlane
//	what the forwarder drops as malformed (the packet beyond the frame,
//	the TCP header beyond the packet, a data offset under 5), or a SYN
//	with FIN or RST (no bare SYN to the forwarder) -> synlane
//	off                       -> synlane
//	(VIP, port) not in svc    -> synlane
//	bucket's MAC all zero     -> synlane
//	frame not to our MAC, or from it -> synlane
//	else: destination MAC = the bucket's, source = ours, count, XDP_TX
func (m *synMaps) instructions(ctx asm.Register) asm.Instructions {
	const (
		eth     = 14
		xdpTX   = 3
		svcKey  = -40 // 8 bytes
		xPort   = -48
		xAddr   = -56
		zeroKey = -64 // u32 0: cfg and count
		tabKey  = -72 // u32
		cfgPtr  = asm.R9
	)
	insns := asm.Instructions{
		asm.LoadMem(asm.R4, asm.R2, eth, asm.Byte), // version 4, a header of 20 bytes or more, as the forwarder wants
		asm.JLT.Imm(asm.R4, 0x45, "synlane"),
		asm.JGT.Imm(asm.R4, 0x4f, "synlane"),
		asm.LoadMem(asm.R0, asm.R2, eth+2, asm.Half), // total length
		asm.HostTo(asm.BE, asm.R0, asm.Half),
		asm.And.Imm(asm.R0, 0xffff),
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Add.Imm(asm.R1, eth),
		asm.Add.Reg(asm.R1, asm.R0),
		asm.JGT.Reg(asm.R1, asm.R3, "synlane"), // the packet beyond the frame
		asm.And.Imm(asm.R4, 0xf),
		asm.LSh.Imm(asm.R4, 2),
		asm.Add.Imm(asm.R4, 20),
		asm.JGT.Reg(asm.R4, asm.R0, "synlane"), // the TCP header beyond the packet
		asm.LoadMem(asm.R4, asm.R5, eth+12, asm.Byte),
		asm.JLT.Imm(asm.R4, 5<<4, "synlane"), // data offset < 5
		asm.LoadMem(asm.R4, asm.R5, eth+tcpFlags, asm.Byte),
		asm.JSet.Imm(asm.R4, 0x05, "synlane"),        // FIN or RST
		asm.LoadMem(asm.R4, asm.R5, eth+0, asm.Half), // source port
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.LoadMem(asm.R1, asm.R2, eth+ipv4Src, asm.Word), // source address
		asm.HostTo(asm.BE, asm.R1, asm.Word),
		asm.StoreMem(asm.RFP, xAddr, asm.R1, asm.DWord),
		asm.LSh.Imm(asm.R1, 16),
		asm.Xor.Reg(asm.R1, asm.R4),
		asm.StoreMem(asm.RFP, xPort, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, svcKey, asm.R7, asm.Word), // (VIP, port, 0) as on the wire
		asm.LoadMem(asm.R4, asm.R5, eth+2, asm.Half),
		asm.StoreMem(asm.RFP, svcKey+4, asm.R4, asm.Half),
		asm.StoreImm(asm.RFP, svcKey+6, 0, asm.Half),
	}
	insns = append(insns, switchedOn(m.cfg, zeroKey, cfgPtr, "synlane")...)
	insns = append(insns, m.bucket(svcKey, xAddr, xPort, tabKey, "synlane")...)
	insns = append(insns, packetData(ctx, asm.R1, eth, "synlane")...) // data again
	insns = append(insns, toUsNotFromUs(asm.R2, cfgPtr, asm.R1, asm.R4, "synlane", "synnotours")...)
	rewrite := rewriteMACs(asm.R2, asm.R0, cfgPtr, asm.R1)
	rewrite[0] = rewrite[0].WithSymbol("synnotours")
	insns = append(insns, rewrite...)
	insns = append(insns, stackLookup(m.count, zeroKey)...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "syntx"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, xdpTX).WithSymbol("syntx"),
		asm.Return(),
	)
	return insns
}

// instructions6 is the stateless-SYN block for IPv6, entered with a
// bare IPv6 TCP SYN to a VIP (TCP right after the fixed header, SYN
// without ACK): R2 data, R3 data_end, the frame's first 14+40+14 bytes in
// bounds, ctx in the given register. It ends in instructions' XDP_TX
// tail, or jumps to "synlane6" (R2 and R3 clobbered).
//
//	not version 6                                -> synlane6
//	what the forwarder drops as malformed (the packet, payload length
//	and fixed header, beyond the frame; the TCP header beyond the
//	packet; a data offset under 5), or a SYN with FIN or RST -> synlane6
//	off                                          -> synlane6
//	(VIP, port) not in svc6                      -> synlane6
//	bucket's MAC all zero (scheduler.BucketIPv6's bucket) -> synlane6
//	frame not to our MAC, or from it             -> synlane6
//	else: as instructions (synnotours): MACs rewritten, count, XDP_TX
func (m *synMaps) instructions6(ctx asm.Register) asm.Instructions {
	const (
		eth     = 14
		tcp     = eth + ipv6Len
		svcKey  = -96 // 20 bytes: (VIP, port, 0) as on the wire
		xPort   = -104
		xLo     = -48
		xHi     = -56
		zeroKey = -64 // u32 0: cfg and count (as instructions)
		tabKey  = -72 // u32
		cfgPtr  = asm.R9
	)
	insns := ipv6PayloadLength(asm.R2, asm.R4, asm.R0, "synlane6")
	insns = append(insns,
		asm.JLT.Imm(asm.R0, 20, "synlane6"), // the TCP header beyond the packet
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Add.Imm(asm.R1, tcp),
		asm.Add.Reg(asm.R1, asm.R0),
		asm.JGT.Reg(asm.R1, asm.R3, "synlane6"), // the packet beyond the frame
		asm.LoadMem(asm.R4, asm.R2, tcp+12, asm.Byte),
		asm.JLT.Imm(asm.R4, 5<<4, "synlane6"), // data offset < 5
		asm.LoadMem(asm.R4, asm.R2, tcp+tcpFlags, asm.Byte),
		asm.JSet.Imm(asm.R4, 0x05, "synlane6"),     // FIN or RST
		asm.LoadMem(asm.R4, asm.R2, tcp, asm.Half), // source port
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.And.Imm(asm.R4, 0xffff),
		asm.StoreMem(asm.RFP, xPort, asm.R4, asm.DWord),
		asm.LoadMem(asm.R1, asm.R2, eth+ipv6Src, asm.DWord), // source address
		asm.HostTo(asm.BE, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, xHi, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R2, eth+ipv6Src+8, asm.DWord),
		asm.HostTo(asm.BE, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, xLo, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R2, eth+ipv6Src+16, asm.DWord), // (VIP, port, 0) as on the wire
		asm.StoreMem(asm.RFP, svcKey, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R2, eth+ipv6Src+24, asm.DWord),
		asm.StoreMem(asm.RFP, svcKey+8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R2, tcp+2, asm.Half),
		asm.StoreMem(asm.RFP, svcKey+16, asm.R1, asm.Half),
		asm.StoreImm(asm.RFP, svcKey+18, 0, asm.Half),
	)
	insns = append(insns, switchedOn(m.cfg, zeroKey, cfgPtr, "synlane6")...)
	insns = append(insns, m.bucket6(svcKey, xHi, xLo, xPort, tabKey, "synlane6")...)
	insns = append(insns, packetData(ctx, asm.R1, eth, "synlane6")...) // data again
	insns = append(insns, toUsNotFromUs(asm.R2, cfgPtr, asm.R1, asm.R4, "synlane6", "synnotours")...)
	// (A jump back, as the kernel-flow block's: no loop.)
	return append(insns, asm.Ja.Label("synnotours"))
}

// bucket looks up the client's bucket: the service (VIP, port) at svcKey
// on the stack, the client's address (u64, host order) at xAddr and
// address << 16 ^ port at xPort. It ends with R0 pointing at the bucket's
// MAC (8 bytes, 6 used), or jumps to fail for a service without a table
// or a bucket left to drlb (all zero). It clobbers R1-R5 and the u32 at
// tabKey.
func (m *synMaps) bucket(svcKey, xAddr, xPort, tabKey int16, fail string) asm.Instructions {
	insns := stackLookup(m.svc, svcKey)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, fail),
		asm.LoadMem(asm.R4, asm.RFP, xAddr, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, 16, asm.Word), // hash port?
		asm.JEq.Imm(asm.R1, 0, "synseed"),
		asm.LoadMem(asm.R4, asm.RFP, xPort, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord).WithSymbol("synseed"),
		asm.Xor.Reg(asm.R4, asm.R1),
	)
	insns = append(insns, mix64(asm.R4, asm.R1)...)
	return append(insns, m.reduce(tabKey, fail)...)
}

// bucket6 is bucket for an IPv6 client: the service (VIP, port, 0) at
// svcKey in svc6, the client's address as two u64 (host order) at xHi
// and xLo, its port (u64) at xPort; the hash is scheduler.BucketIPv6's.
// It clobbers what bucket does.
func (m *synMaps) bucket6(svcKey, xHi, xLo, xPort, tabKey int16, fail string) asm.Instructions {
	insns := stackLookup(m.svc6, svcKey)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, fail),
		asm.LoadMem(asm.R4, asm.R0, 0, asm.DWord), // seed ^ hi ^ 1<<63
		asm.LoadMem(asm.R1, asm.RFP, xHi, asm.DWord),
		asm.Xor.Reg(asm.R4, asm.R1),
		asm.LoadImm(asm.R1, math.MinInt64, asm.DWord),
		asm.Xor.Reg(asm.R4, asm.R1),
	)
	insns = append(insns, mix64(asm.R4, asm.R1)...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.RFP, xLo, asm.DWord),
		asm.Xor.Reg(asm.R4, asm.R1),
	)
	insns = append(insns, mix64(asm.R4, asm.R1)...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.R0, 16, asm.Word), // hash port?
		asm.JEq.Imm(asm.R1, 0, "synhashed6"),
		asm.LoadMem(asm.R1, asm.RFP, xPort, asm.DWord),
		asm.Xor.Reg(asm.R4, asm.R1),
	)
	insns = append(insns, mix64(asm.R4, asm.R1)...)
	red := m.reduce(tabKey, fail)
	red[0] = red[0].WithSymbol("synhashed6")
	return append(insns, red...)
}

// mix64 is splitmix64's finalizer on h, with scratch clobbered.
func mix64(h, scratch asm.Register) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(scratch, h),
		asm.RSh.Imm(scratch, 30),
		asm.Xor.Reg(h, scratch),
		asm.LoadImm(scratch, int64(mix64Mul1), asm.DWord),
		asm.Mul.Reg(h, scratch),
		asm.Mov.Reg(scratch, h),
		asm.RSh.Imm(scratch, 27),
		asm.Xor.Reg(h, scratch),
		asm.LoadImm(scratch, int64(mix64Mul2), asm.DWord),
		asm.Mul.Reg(h, scratch),
		asm.Mov.Reg(scratch, h),
		asm.RSh.Imm(scratch, 31),
		asm.Xor.Reg(h, scratch),
	}
}

// reduce maps the hash in R4 onto the buckets of the service whose value
// R0 points at and looks the bucket up: R0 its MAC, or fail.
func (m *synMaps) reduce(tabKey int16, fail string) asm.Instructions {
	insns := asm.Instructions{
		// ((h >> 32) * n) >> 32, then the service's offset
		asm.RSh.Imm(asm.R4, 32),
		asm.LoadMem(asm.R1, asm.R0, 12, asm.Word),
		asm.Mul.Reg(asm.R4, asm.R1),
		asm.RSh.Imm(asm.R4, 32),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.Word),
		asm.Add.Reg(asm.R4, asm.R1),
		asm.StoreMem(asm.RFP, tabKey, asm.R4, asm.Word),
	}
	insns = append(insns, stackLookup(m.tab, tabKey)...)
	return append(insns,
		asm.JEq.Imm(asm.R0, 0, fail),
		asm.LoadMem(asm.R4, asm.R0, 0, asm.DWord),
		asm.JEq.Imm(asm.R4, 0, fail),
	)
}

// SetStatelessSYNs implements StatelessSYNPort.
func (p *xdpPort) SetStatelessSYNs(on bool, tables []SYNTable) (int, error) {
	p.mmu.Lock()
	defer p.mmu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if p.refs != nil && on {
		// One SYN map for every queue's port, filled from one table.
		return 0, newError(p.ifname, "XDP stateless SYNs", ErrQueuePorts)
	}
	left, err := p.objs.syn.set(on, p.ap.HardwareAddr(), tables)
	if err != nil {
		return 0, newError(p.ifname, "XDP stateless SYNs", err)
	}
	return left, nil
}

// StatelessSYNsSent implements StatelessSYNPort.
func (p *xdpPort) StatelessSYNsSent() (uint64, error) {
	p.mmu.Lock()
	defer p.mmu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	return p.objs.syn.sent()
}
