package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// maxKernelFlows bounds the flows the XDP program forwards itself
// (preallocated: 40 bytes and the kernel's per-element overhead each, some
// 24 MiB); maxKernelServers the servers they go to. The flows that do not
// fit stay with drlb, counted in Stats.KernelFlowsFull.
const (
	maxKernelFlows   = 1 << 18
	maxKernelServers = 4096
	protoUDP         = 17
)

var _ FlowPort = (*xdpPort)(nil)

// flowMaps are the XDP program's maps for kernel flows (FlowPort).
type flowMaps struct {
	cfg     *ebpf.Map // [0]: on (u32), director MAC (6 bytes at 4), mtu (u32 at 12, 0: any)
	flows   *ebpf.Map // kflowKey -> kflowValue (IPv4)
	flows6  *ebpf.Map // kflowKey6 -> kflowValue6 (IPv6)
	servers *ebpf.Map // server ID (u32) -> MAC (6 of 8 bytes)
	counts  *ebpf.Map // per CPU: server ID (u32) -> kflowCount

	// Scratch for update, reused from call to call (the port's mmu, or
	// the test, keeps calls apart).
	keys  []kflowKey
	vals  []kflowValue
	keys6 []kflowKey6
	vals6 []kflowValue6
	zero  []kflowCount // one per possible CPU
}

// kflowKey, kflowValue and kflowCount are the maps' layouts. The key's
// addresses and ports are in wire order, as the program copies them from
// the frame.
type kflowKey struct {
	Saddr, Daddr [4]byte
	Sport, Dport [2]byte
	Proto        uint8
	_            [3]byte
}

type kflowValue struct {
	// Key is the flow's key again: the program reads the server, then
	// checks that the element still holds its flow. A preallocated hash
	// map reuses a deleted element at once, so a frame looked up just
	// before its flow was removed could otherwise read the next flow's
	// server (Key comes before Server, and the kernel copies a value
	// front to back). The check relies on the stores and loads keeping
	// their order, as x86 does; on a weakly ordered CPU (arm64) it
	// narrows the window but does not close it: one frame of a flow being
	// removed may still reach the next flow's server.
	Key    kflowKey
	Server uint32
	_      uint32
	// Refresh is how long the program forwards the flow between two
	// frames it leaves to drlb, PuntAt (CLOCK_MONOTONIC, bpf_ktime_get_ns)
	// when the next one goes there.
	Refresh, PuntAt uint64
}

// kflowValueSize is kflowValue's size in the map.
const kflowValueSize = 40

// kflowKey6 and kflowValue6 are the IPv6 flows' layouts: kflowKey and
// kflowValue with 16-byte addresses (the key's ports and protocol in the
// same order, the value's Key still before Server).
type kflowKey6 struct {
	Saddr, Daddr [16]byte
	Sport, Dport [2]byte
	Proto        uint8
	_            [3]byte
}

type kflowValue6 struct {
	Key             kflowKey6
	Server          uint32
	_               uint32
	Refresh, PuntAt uint64
}

// kflowKey6Size and kflowValue6Size are their sizes in the map.
const (
	kflowKey6Size   = 40
	kflowValue6Size = 64
)

// kflowLayout is where a family's flows map keeps the value's fields,
// for the programs.
type kflowLayout struct {
	keySize                 int16 // bytes of key, at the value's start too
	server, refresh, puntAt int16 // offsets in the value
}

var (
	kflowLayout4 = kflowLayout{keySize: 16, server: 16, refresh: 24, puntAt: 32}
	kflowLayout6 = kflowLayout{keySize: kflowKey6Size, server: 40, refresh: 48, puntAt: 56}
)

type kflowCount struct{ Packets, Bytes uint64 }

// make creates the maps, the flows map with room for maxFlows
// (maxKernelFlows; tests make it small).
func (m *flowMaps) make(maxFlows int) error {
	var mk mapMaker
	m.cfg = mk.make(&ebpf.MapSpec{Name: "drlb_kfcfg", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	m.flows = mk.make(&ebpf.MapSpec{Name: "drlb_kflows", Type: ebpf.Hash, KeySize: 16, ValueSize: kflowValueSize, MaxEntries: uint32(maxFlows)})
	// IPv6 flows take memory as they come: a director with IPv4
	// services only pays nothing for them.
	m.flows6 = mk.make(&ebpf.MapSpec{Name: "drlb_kflows6", Type: ebpf.Hash, KeySize: kflowKey6Size, ValueSize: kflowValue6Size, MaxEntries: uint32(maxFlows), Flags: unix.BPF_F_NO_PREALLOC})
	// Servers and counts take memory as servers are listed (a handful),
	// not for maxKernelServers up front: the counts are per CPU, and a
	// split group has a set per worker.
	m.servers = mk.make(&ebpf.MapSpec{Name: "drlb_kfservers", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: maxKernelServers, Flags: unix.BPF_F_NO_PREALLOC})
	m.counts = mk.make(&ebpf.MapSpec{Name: "drlb_kfcounts", Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 16, MaxEntries: maxKernelServers, Flags: unix.BPF_F_NO_PREALLOC})
	if mk.err != nil {
		return mk.err
	}
	n, err := ebpf.PossibleCPU()
	if err == nil {
		m.zero = make([]kflowCount, n)
	}
	return err
}

func (m *flowMaps) close() {
	closeMaps(m.cfg, m.flows, m.flows6, m.servers, m.counts)
	*m = flowMaps{}
}

// setServers writes the servers (those no longer listed removed, the
// others put, a count for each created the first time it is listed) and
// then the switch, so the program never forwards to a server whose MAC is
// not written yet; turning off writes the switch first, so that it takes
// effect in one write, whatever the servers' writes do after it. A failed
// write turns the forwarding off: a server put only half would keep its
// old MAC. More than maxKernelServers servers is such a failure.
//
// Counts are never removed: KernelFlowCounts is cumulative since the port
// opened, for servers that come and go too. Once maxKernelServers IDs
// have been listed the ones after have no count; their flows are still
// forwarded, only not counted.
func (m *flowMaps) setServers(on bool, mac net.HardwareAddr, mtu int, servers []KernelServer) error {
	if len(mac) != 6 {
		return fmt.Errorf("MAC %v is not a 6-byte Ethernet address", mac)
	}
	if mtu < 0 || mtu > 65535 {
		return fmt.Errorf("MTU %d is not 0..65535", mtu)
	}
	var v [16]byte
	if on {
		v[0] = 1
	}
	copy(v[4:10], mac)
	binary.NativeEndian.PutUint32(v[12:], uint32(mtu))
	if !on {
		if err := m.cfg.Put(uint32(0), v); err != nil {
			return err
		}
	}
	if err := m.writeServers(servers); err != nil {
		_ = m.cfg.Put(uint32(0), [16]byte{})
		return err
	}
	if !on {
		return nil
	}
	return m.cfg.Put(uint32(0), v)
}

func (m *flowMaps) writeServers(servers []KernelServer) error {
	listed := make(map[uint32]bool, len(servers))
	for _, s := range servers {
		listed[s.ID] = true
	}
	if err := pruneMap[uint32, [8]byte](m.servers, "servers", func(id uint32) bool { return listed[id] }); err != nil {
		return err
	}
	var mac [8]byte
	for _, s := range servers {
		copy(mac[:6], s.MAC[:])
		if err := m.servers.Put(s.ID, mac); err != nil {
			return fmt.Errorf("server %d: %w", s.ID, err)
		}
		err := m.counts.Update(s.ID, m.zero, ebpf.UpdateNoExist)
		if err != nil && !errors.Is(err, ebpf.ErrKeyExist) && !mapFull(err) {
			return fmt.Errorf("server %d count: %w", s.ID, err)
		}
	}
	return nil
}

// mapFull reports whether a map update failed for want of room.
func mapFull(err error) bool { return errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOSPC) }

// kflowKeyOf is the IPv4 map key of a flow, false for one that is not
// IPv4 on both ends, or neither TCP nor UDP.
func kflowKeyOf(client, vip netip.AddrPort, proto uint8) (kflowKey, bool) {
	c, v := client.Addr().Unmap(), vip.Addr().Unmap()
	if !c.Is4() || !v.Is4() || proto != protoTCP && proto != protoUDP {
		return kflowKey{}, false
	}
	return kflowKey{Saddr: c.As4(), Daddr: v.As4(), Sport: port16(client), Dport: port16(vip), Proto: proto}, true
}

// kflowKey6Of is the IPv6 map key of a flow, false for one that is not
// IPv6 on both ends (an IPv4-mapped address is IPv4), or neither TCP
// nor UDP.
func kflowKey6Of(client, vip netip.AddrPort, proto uint8) (kflowKey6, bool) {
	c, v := client.Addr(), vip.Addr()
	if !c.Is6() || !v.Is6() || c.Is4In6() || v.Is4In6() || proto != protoTCP && proto != protoUDP {
		return kflowKey6{}, false
	}
	return kflowKey6{Saddr: c.As16(), Daddr: v.As16(), Sport: port16(client), Dport: port16(vip), Proto: proto}, true
}

// port16 is ap's port in wire order.
func port16(ap netip.AddrPort) [2]byte { return [2]byte{byte(ap.Port() >> 8), byte(ap.Port())} }

// update removes del, then puts add (now: CLOCK_MONOTONIC), each in the
// map of its family, and returns how many of add did not fit. Flows the
// programs cannot see are skipped: they stay with drlb. The first error
// is returned, after every element was tried (deleteFlows, putFlows).
func (m *flowMaps) update(add []KernelFlow, del []KernelFlowKey, now time.Duration) (full int, err error) {
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	m.keys, m.keys6 = m.keys[:0], m.keys6[:0]
	for _, d := range del {
		if k, ok := kflowKeyOf(d.Client, d.VIP, d.Proto); ok {
			m.keys = append(m.keys, k)
		} else if k, ok := kflowKey6Of(d.Client, d.VIP, d.Proto); ok {
			m.keys6 = append(m.keys6, k)
		}
	}
	keep(deleteFlows(m.flows, m.keys))
	keep(deleteFlows(m.flows6, m.keys6))
	m.keys, m.vals, m.keys6, m.vals6 = m.keys[:0], m.vals[:0], m.keys6[:0], m.vals6[:0]
	for _, a := range add {
		r := uint64(max(a.Refresh, time.Millisecond))
		if k, ok := kflowKeyOf(a.Client, a.VIP, a.Proto); ok {
			m.keys = append(m.keys, k)
			m.vals = append(m.vals, kflowValue{Key: k, Server: a.Server, Refresh: r, PuntAt: uint64(now) + r})
		} else if k, ok := kflowKey6Of(a.Client, a.VIP, a.Proto); ok {
			m.keys6 = append(m.keys6, k)
			m.vals6 = append(m.vals6, kflowValue6{Key: k, Server: a.Server, Refresh: r, PuntAt: uint64(now) + r})
		}
	}
	n, e := putFlows(m.flows, m.keys, m.vals)
	full += n
	keep(e)
	n, e = putFlows(m.flows6, m.keys6, m.vals6)
	keep(e)
	return full + n, err
}

// stopped moves i past the elements a batch of total did before it
// stopped (n, which may be negative or too large after an error).
func stopped(i, n, total int) int { return i + min(max(n, 0), total-i) }

// deleteFlows removes keys from flows in batches. A batch stops at the
// first element that fails, and its error is that element's: a key that
// is not there is fine, and the batch goes on after it; after any other
// error the rest go one by one, so one bad element costs only itself.
// The first such error is returned, after every key was tried.
func deleteFlows[K any](flows *ebpf.Map, keys []K) (err error) {
	batch := true
	for i := 0; i < len(keys); i++ {
		if batch && len(keys)-i > 1 {
			n, e := flows.BatchDelete(keys[i:], nil)
			if i = stopped(i, n, len(keys)); e == nil || i == len(keys) {
				break
			}
			if errors.Is(e, ebpf.ErrKeyNotExist) {
				continue // keys[i] was not there
			}
			batch = false
		}
		if e := flows.Delete(&keys[i]); e != nil && !errors.Is(e, ebpf.ErrKeyNotExist) && err == nil {
			err = fmt.Errorf("delete flow: %w", e)
		}
	}
	return err
}

// putFlows puts keys and vals in flows in batches and returns how many
// found no room: such an element is counted, and the rest go one by one
// (a batch would stop at each); after any other error too, so one bad
// element costs only itself. The first other error is returned, after
// every element was tried.
func putFlows[K, V any](flows *ebpf.Map, keys []K, vals []V) (full int, err error) {
	batch := true
	for i := 0; i < len(keys); i++ {
		if batch && len(keys)-i > 1 {
			n, e := flows.BatchUpdate(keys[i:], vals[i:], nil)
			if i = stopped(i, n, len(keys)); e == nil || i == len(keys) {
				break
			}
			batch = false
			if mapFull(e) {
				full++ // keys[i] has no room
				continue
			}
		}
		switch e := flows.Put(&keys[i], &vals[i]); {
		case e == nil:
		case mapFull(e):
			full++
		case err == nil:
			err = fmt.Errorf("put flow: %w", e)
		}
	}
	return full, err
}

// counted sums the per-CPU counts per server.
func (m *flowMaps) counted() (map[uint32]KernelCount, error) {
	out := map[uint32]KernelCount{}
	var id uint32
	var per []kflowCount
	it := m.counts.Iterate()
	for it.Next(&id, &per) {
		var c KernelCount
		for _, p := range per {
			c.Packets += p.Packets
			c.Bytes += p.Bytes
		}
		out[id] = c
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	return out, nil
}

// monotonicNow is CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monotonicNow() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}

// instructions is the XDP program's kernel-flow block (kflowBlock),
// entered (at "kflow") with any IPv4 or IPv6 frame to a VIP, ctx in the
// given register (not R1-R5, R7, R9). A frame of a kernel flow leaves
// with XDP_TX, its destination MAC the server's, its source ours,
// counted; any other jumps to "kflowdone" with R0-R5, R7 and R9
// clobbered, and goes on as if the block were not there.
func (m *flowMaps) instructions(ctx asm.Register) asm.Instructions {
	const xdpTX = 3
	// data and data_end again (a helper call leaves R2 and R3 unknown),
	// bounds checked for n bytes.
	reload := func(n int32) asm.Instructions { return packetData(ctx, asm.R1, n, "kflowdone") }
	insns := m.kflowBlock(kflowAccess{
		read: func(_, n int32) asm.Instructions { return reload(n) },
		within: asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R2),
			asm.Add.Imm(asm.R1, 14),
			asm.Add.Reg(asm.R1, asm.R5),
			asm.JGT.Reg(asm.R1, asm.R3, "kflowdone"),
		},
	})
	insns[0] = insns[0].WithSymbol("kflow")
	insns = append(insns, reload(14)...)
	insns = append(insns, rewriteMACs(asm.R2, asm.R0, asm.R9, asm.R1)...)
	insns = append(insns, kflowCounted(m.counts, "kflowtx")...)
	return append(insns,
		asm.Mov.Imm(asm.R0, xdpTX).WithSymbol("kflowtx"),
		asm.Return(),
	)
}
