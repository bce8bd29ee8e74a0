package forwarder

import (
	"net/netip"
	"time"

	"github.com/drlb/drlb/conntable"
)

// Kernel flows: the frames of an established connection that a program
// in the kernel forwards itself (the AF_XDP port's XDP program, or an
// AF_PACKET worker's socket filter and tc program), as the
// fast path would, so that they cost no wake-up and no copy through drlb.
// drlb stays the only one that decides: the forwarder hands out a flow
// only once fastExisting has forwarded one of its frames, the kernel sends
// one frame of each flow every Refresh on to drlb anyway (which keeps the
// entry's timeout, sync records and persistence template fresh, and hands
// the flow out again), and anything unusual (a SYN, FIN or RST, a server
// no longer in KernelServers, a frame over the MTU) goes to drlb, which
// takes the flow back.
//
// The worker collects the changes while it processes a batch
// (KernelFlowChanges) and its caller writes them to the kernel after the
// batch; KernelServers says which servers the kernel may send to.

// KernelFlow is a flow for the kernel to forward: its frames from Client
// to VIP (Proto) go to the server KernelServers lists as Server, except
// one every Refresh. IPv4 and IPv6 flows are handed out.
type KernelFlow struct {
	Client, VIP netip.AddrPort
	Proto       uint8
	Server      uint32
	Refresh     time.Duration
}

// KernelFlowKey names a KernelFlow the kernel must no longer forward.
type KernelFlowKey struct {
	Client, VIP netip.AddrPort
	Proto       uint8
}

// KernelServer is a server the kernel may forward flows to, by the MAC
// its frames get.
type KernelServer struct {
	ID  uint32
	MAC [6]byte
}

// kernelFlowBatch bounds the flows handed out per KernelFlowChanges call:
// one frame per flow at most in a batch of frames, and the ones beyond
// it are handed out with their next frame.
const kernelFlowBatch = 256

// kernelFlowRemovals bounds the removals collected between two
// KernelFlowChanges calls: the caller takes them after each batch of
// frames (whose sweeps and lookups end a few hundred entries at most) and
// after each chunk of an idle sweep (4096 slots). Beyond it they are
// dropped and KernelFlowChanges says so (lost): the caller must then
// turn the kernel's forwarding off, since it may hold flows drlb ended.
const kernelFlowRemovals = 8192

// kernelFlowRefreshMax is the longest Refresh: the kernel sends a frame of
// each flow to drlb at least this often, well within any timeout (a
// Refresh is at most a quarter of it). Each such frame costs drlb a
// wake-up and a map write; the servers' counts come from the kernel and
// do not wait for it.
const kernelFlowRefreshMax = 5 * time.Second

// kernelFlows is a worker's side of kernel flows (EnableKernelFlows).
type kernelFlows struct {
	on   bool
	add  []KernelFlow
	del  []KernelFlowKey
	lost bool // removals beyond kernelFlowRemovals were dropped
}

// EnableKernelFlows makes this worker hand out flows (KernelFlowChanges).
// For the goroutine that runs Process, before the first frame whose flow
// the kernel could forward.
func (f *Forwarder) EnableKernelFlows() {
	if f.kf.on {
		return
	}
	f.kf = kernelFlows{on: true, add: make([]KernelFlow, 0, kernelFlowBatch), del: make([]KernelFlowKey, 0, kernelFlowRemovals)}
}

// DisableKernelFlows stops handing out flows for good: the director
// turned the kernel's forwarding off after a failed write. Entries handed
// out before keep no extra refresh and are no longer counted as the
// kernel's (KernelFlowsOut is 0), and nothing is collected for the
// kernel any more. For the goroutine that runs Process.
func (f *Forwarder) DisableKernelFlows() {
	f.kf = kernelFlows{}
	f.kernelOut.Store(0)
}

// KernelFlowChanges returns the flows the kernel should stop forwarding
// and those it may forward from now on, collected since the last call;
// lost reports that removals were dropped, and then the caller must turn
// the kernel's forwarding off: it may hold flows drlb ended. The slices are the worker's own, valid until the
// next Process call. For the goroutine that runs Process. It allocates
// nothing.
func (f *Forwarder) KernelFlowChanges() (add []KernelFlow, del []KernelFlowKey, lost bool) {
	k := &f.kf
	add, del, lost = k.add, k.del, k.lost
	k.add, k.del, k.lost = k.add[:0], k.del[:0], false
	return add, del, lost
}

// kernelServerID is the ID a KernelFlow names its server by: the entry's
// service and real-server slots, which name the server for as long as
// entries do.
func kernelServerID(svc, real uint16) uint32 { return uint32(svc)<<16 | uint32(real) }

// flagKernel, in Entry.Flags (beside the sync stamp), says that the
// entry's flow was handed to the kernel and not taken back since: it is
// handed out once, and only such a flow is taken back (a flow that never
// reached the kernel costs no removal).
const flagKernel = 0x80

// handOut hands the kernel the flow of e (forwarded by fastExisting to
// the server in slot e.Real of s, in state), if the kernel can take it
// (a UDP flow or an established TCP connection) and does not hold
// it already. It returns how much longer the entry must live than
// timeout: the flow's Refresh. drlb sees one frame per Refresh, so the
// flow's last frame may have gone through the kernel up to a Refresh
// after the last one drlb saw; with the Refresh added the entry outlives
// the flow's last frame by timeout or by up to a Refresh more, never
// less: a flow is never rescheduled while frames still come within the
// timeout. Once the flow is out, the kernel keeps the Refresh of the
// timeouts then, which a reload may have shortened since: the answer is
// then kernelFlowRefreshMax, the longest any flow gets (with timeouts
// under 20 s, such an entry may outlive its timeout by up to 5 s).
func (f *Forwarder) handOut(e *conntable.Entry, s *service, state uint8, timeout time.Duration) time.Duration {
	kf := &f.kf
	k := &e.Key
	if !kf.on || state != stateEstablished && state != stateUDP {
		return 0
	}
	refresh := min(kernelFlowRefreshMax, max(timeout/4, time.Millisecond))
	if e.Flags&flagKernel != 0 {
		// Handed out earlier, with the Refresh of the timeouts then: a
		// reload may have shortened them since, and the kernel keeps
		// the old one. The longest any flow gets covers it.
		return kernelFlowRefreshMax
	}
	if len(kf.add) < cap(kf.add) {
		key := kernelFlowKeyOf(k)
		kf.add = append(kf.add, KernelFlow{Client: key.Client, VIP: key.VIP, Proto: key.Proto,
			Server: kernelServerID(s.slot, e.Real), Refresh: refresh})
		e.Flags |= flagKernel
		f.kernelOut.Add(1)
	}
	// Also when the batch is full: the flow may be in the kernel from
	// an earlier frame.
	return refresh
}

// takeBack tells the kernel to stop forwarding e's flow, if it was handed
// out: the entry is about to change or leave the table.
func (f *Forwarder) takeBack(e *conntable.Entry) {
	kf := &f.kf
	if e.Flags&flagKernel == 0 {
		return
	}
	e.Flags &^= flagKernel
	if !kf.on { // DisableKernelFlows: nothing is the kernel's any more
		return
	}
	f.kernelOut.Add(-1)
	key := kernelFlowKeyOf(&e.Key)
	// The caller removes before it adds: a flow handed out earlier in
	// this batch must not come back after this removal.
	for i := 0; i < len(kf.add); {
		if kf.add[i].key() == key {
			kf.add[i] = kf.add[len(kf.add)-1]
			kf.add = kf.add[:len(kf.add)-1]
			continue
		}
		i++
	}
	if len(kf.del) == cap(kf.del) {
		kf.lost = true
		return
	}
	kf.del = append(kf.del, key)
}

// kernelFlowKeyOf is the flow of a connection key (an IPv4 address as
// itself, not IPv4-mapped).
func kernelFlowKeyOf(k *conntable.Key) KernelFlowKey {
	return KernelFlowKey{
		Client: netip.AddrPortFrom(netip.AddrFrom16(k.CIP).Unmap(), k.CPort),
		VIP:    netip.AddrPortFrom(netip.AddrFrom16(k.VIP).Unmap(), k.VPort),
		Proto:  k.Proto,
	}
}

// key is the flow a handed-out KernelFlow names.
func (a *KernelFlow) key() KernelFlowKey { return KernelFlowKey{a.Client, a.VIP, a.Proto} }

// KernelServers returns the servers the kernel may forward flows to now:
// those of configured services that fastExisting would forward to (usable,
// not drained, not a sorry server gone), with their MACs. Any goroutine.
// A caller that keeps them in the kernel rewrites them on Changes, and
// often enough anyway to follow drain deadlines (DrainPending).
func (f *Forwarder) KernelServers(now int64) []KernelServer {
	var out []KernelServer
	for _, s := range f.cur.Load().services {
		for slot, ref := range s.bySlot {
			if ref.r == nil || ref.idx < 0 || !ref.r.usable() || ref.r.drainOver(now) || s.sorryGone(ref.r) {
				continue
			}
			m := ref.r.mac.Load()
			if m&macKnown == 0 {
				continue
			}
			ks := KernelServer{ID: kernelServerID(s.slot, uint16(slot))}
			putMAC(ks.MAC[:], m)
			out = append(out, ks)
		}
	}
	return out
}

// DrainPending reports whether a server of a configured service has a
// drain deadline after now: KernelServers will drop it then, with no
// Changes token to say so. Any goroutine.
func (f *Forwarder) DrainPending(now int64) bool {
	for _, s := range f.cur.Load().services {
		for _, ref := range s.bySlot {
			if ref.r != nil && ref.idx >= 0 && ref.r.drainDeadline.Load() > now {
				return true
			}
		}
	}
	return false
}

// NoteKernelForwarded adds what the kernel forwarded to the server ID names
// (packets, and their IP bytes) to the server's and its service's totals
// and to the frames forwarded for existing connections, as if this worker
// had forwarded them. An ID that names no server any more is ignored. Any
// goroutine.
func (f *Forwarder) NoteKernelForwarded(id uint32, packets, bytes uint64) {
	if packets == 0 && bytes == 0 {
		return
	}
	s, r := f.cur.Load().owner(uint16(id>>16), uint16(id))
	if s == nil || r == nil {
		return
	}
	r.totals[f.id].addTraffic(packets, bytes)
	s.ctr.totals[f.id].addTraffic(packets, bytes)
	f.counts[ReasonExisting].Add(packets)
	f.kernelFrames.Add(packets)
}

// KernelForwarded is how many frames the kernel forwarded for this worker's
// flows, as noted by NoteKernelForwarded. Any goroutine.
func (f *Forwarder) KernelForwarded() uint64 { return f.kernelFrames.Load() }

// KernelFlowsOut is how many of this worker's flows are handed to the
// kernel now: handed out (the entry marked) and not taken back (its
// mark cleared, also when the entry leaves the table, however it
// leaves). A flow the kernel's map had no room for counts too: the
// forwarder does not know. Any goroutine.
func (f *Forwarder) KernelFlowsOut() int64 { return f.kernelOut.Load() }

// MTU is Options.MTU: the largest IP packet forwarded (0: any), for a
// kernel side that must send larger ones to drlb.
func (f *Forwarder) MTU() int { return f.mtu }

// Changes receives after every change of the configuration (Apply's swap)
// or of a real server's availability, weight, inhibition or MAC (the
// control methods), coalesced: one token may stand for several changes.
// A caller that keeps a copy of KernelServers (or StatelessSYNTables) in
// the kernel rewrites it at once, instead of at its next poll. Each
// worker has its own channel, every change leaves a token on each: one
// goroutine per worker receives it (the director's kernel-flow
// follower). Any goroutine.
func (f *Forwarder) Changes() <-chan struct{} { return f.changed }

// noteChange leaves a token on every worker's Changes.
func (c *core) noteChange() {
	for _, w := range c.workers {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}
