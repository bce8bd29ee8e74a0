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
	flows   *ebpf.Map // kflowKey -> kflowValue
	servers *ebpf.Map // server ID (u32) -> MAC (6 of 8 bytes)
	counts  *ebpf.Map // per CPU: server ID (u32) -> kflowCount

	// Scratch for update, reused from call to call (the port's mmu, or
	// the test, keeps calls apart).
	keys []kflowKey
	vals []kflowValue
	zero []kflowCount // one per possible CPU
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

type kflowCount struct{ Packets, Bytes uint64 }

// make creates the maps, the flows map with room for maxFlows
// (maxKernelFlows; tests make it small).
func (m *flowMaps) make(maxFlows int) error {
	var mk mapMaker
	m.cfg = mk.make(&ebpf.MapSpec{Name: "drlb_kfcfg", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	m.flows = mk.make(&ebpf.MapSpec{Name: "drlb_kflows", Type: ebpf.Hash, KeySize: 16, ValueSize: kflowValueSize, MaxEntries: uint32(maxFlows)})
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
	closeMaps(m.cfg, m.flows, m.servers, m.counts)
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

// kflowKeyOf is the map key of a flow, false for one the program cannot
// see (not IPv4 on both ends, neither TCP nor UDP).
func kflowKeyOf(client, vip netip.AddrPort, proto uint8) (kflowKey, bool) {
	c, v := client.Addr().Unmap(), vip.Addr().Unmap()
	if !c.Is4() || !v.Is4() || proto != protoTCP && proto != protoUDP {
		return kflowKey{}, false
	}
	k := kflowKey{Saddr: c.As4(), Daddr: v.As4(), Proto: proto}
	k.Sport = [2]byte{byte(client.Port() >> 8), byte(client.Port())}
	k.Dport = [2]byte{byte(vip.Port() >> 8), byte(vip.Port())}
	return k, true
}

// update removes del, then puts add (now: CLOCK_MONOTONIC), and returns
// how many of add did not fit. Each group goes in batches. A batch stops
// at the first element that fails, and its error is that element's: a
// key to remove that is not there is fine, and the batch goes on after
// it; an element with no room is counted, and the rest go one by one (a
// batch would stop at each); after any other error the rest go one by
// one too, so one bad element costs only itself. Flows the program
// cannot see are skipped: they stay with drlb. The first other error is
// returned, after every element was tried.
func (m *flowMaps) update(add []KernelFlow, del []KernelFlowKey, now time.Duration) (full int, err error) {
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	// stopped moves i past the elements a batch did before it stopped.
	stopped := func(i, n, total int) int { return i + min(max(n, 0), total-i) }
	m.keys = m.keys[:0]
	for _, d := range del {
		if k, ok := kflowKeyOf(d.Client, d.VIP, d.Proto); ok {
			m.keys = append(m.keys, k)
		}
	}
	batch := true
	for i := 0; i < len(m.keys); i++ {
		if batch && len(m.keys)-i > 1 {
			n, e := m.flows.BatchDelete(m.keys[i:], nil)
			if i = stopped(i, n, len(m.keys)); e == nil || i == len(m.keys) {
				break
			}
			if errors.Is(e, ebpf.ErrKeyNotExist) {
				continue // keys[i] was not there
			}
			batch = false
		}
		if e := m.flows.Delete(&m.keys[i]); e != nil && !errors.Is(e, ebpf.ErrKeyNotExist) {
			keep(fmt.Errorf("delete flow: %w", e))
		}
	}
	m.keys, m.vals = m.keys[:0], m.vals[:0]
	for _, a := range add {
		k, ok := kflowKeyOf(a.Client, a.VIP, a.Proto)
		if !ok {
			continue
		}
		r := uint64(max(a.Refresh, time.Millisecond))
		m.keys = append(m.keys, k)
		m.vals = append(m.vals, kflowValue{Key: k, Server: a.Server, Refresh: r, PuntAt: uint64(now) + r})
	}
	batch = true
	for i := 0; i < len(m.keys); i++ {
		if batch && len(m.keys)-i > 1 {
			n, e := m.flows.BatchUpdate(m.keys[i:], m.vals[i:], nil)
			if i = stopped(i, n, len(m.keys)); e == nil || i == len(m.keys) {
				break
			}
			batch = false
			if mapFull(e) {
				full++ // keys[i] has no room
				continue
			}
		}
		switch e := m.flows.Put(&m.keys[i], &m.vals[i]); {
		case e == nil:
		case mapFull(e):
			full++
		default:
			keep(fmt.Errorf("put flow: %w", e))
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
// entered with any IPv4 frame to a VIP, ctx in the given register (not
// R1-R5, R7, R9). A frame of a kernel flow leaves with XDP_TX, its
// destination MAC the server's, its source ours, counted; any other
// jumps to "kflowdone" with R0-R5, R7 and R9 clobbered, and goes on as
// if the block were not there.
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
	insns = append(insns, reload(14)...)
	insns = append(insns, rewriteMACs(asm.R2, asm.R0, asm.R9, asm.R1)...)
	insns = append(insns, kflowCounted(m.counts, "kflowtx")...)
	return append(insns,
		asm.Mov.Imm(asm.R0, xdpTX).WithSymbol("kflowtx"),
		asm.Return(),
	)
}
