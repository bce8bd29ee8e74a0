package arp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/drlb/drlb/internal/wire"
)

// ResponderConfig configures a Responder.
type ResponderConfig struct {
	// MAC is the director's interface MAC: the answer to who-has VIP.
	MAC MAC
	// VIPs are the addresses to answer for, IPv4 (ARP) and IPv6 (NDP).
	VIPs []netip.Addr
	// VLAN, if tagged, is the one VLAN the VIPs are on (config vlan: on
	// a trunk). A frame on another VLAN, or untagged (the trunk's native
	// VLAN), comes from another network, where the VIP's address may be
	// someone else's: it is neither answered (that would draw that
	// network's traffic for the address to the director) nor a conflict
	// (re-announcing would not help: the announcements carry this tag).
	// Untagged (the default): answer on any VLAN, with the request's tag.
	// Only the VLAN ID counts: the inner tag of a QinQ frame.
	VLAN VLAN
	// OnConflict, if set, is called when another station claims one of
	// our VIPs. It runs synchronously on the receive path: it must be
	// quick and must not block (count, log with a rate limit, or hand
	// the event to a channel with a non-blocking send).
	OnConflict func(Conflict)
}

// Conflict is another station claiming one of our VIPs: a gratuitous ARP,
// an ARP message or solicitation sent from the VIP, or an advertisement
// for it, from a MAC that is not ours.
type Conflict struct {
	VIP   netip.Addr
	MAC   MAC // the other station
	VLAN  VLAN
	Outer wire.Tag // the outer tag of a QinQ frame, as in Ethernet
}

// ResponderStats are the Responder's counters since it was built.
type ResponderStats struct {
	Requests  uint64 // who-has VIP (ARP request or neighbor solicitation) addressed to us
	Probes    uint64 // of which ARP probes (sender 0.0.0.0) or DAD solicitations (source ::)
	Replies   uint64 // replies written
	Conflicts uint64 // other stations claiming a VIP
	Malformed uint64 // ARP or NDP frames that failed to parse
}

// Responder answers ARP and neighbor solicitations for the VIPs with the
// director's MAC. It is safe for concurrent use: Handle may run on several
// receive goroutines while SetVIPs replaces the set.
type Responder struct {
	mac        MAC
	vlan       VLAN
	vips       atomic.Pointer[vipSet]
	onConflict func(Conflict)

	requests, probes, replies, conflicts, malformed atomic.Uint64
}

// vipSet is immutable once published: SetVIPs swaps in a new one, so Handle
// reads it without locks.
type vipSet struct {
	m map[netip.Addr]struct{}
}

func (s *vipSet) has(a netip.Addr) bool {
	_, ok := s.m[a]
	return ok
}

// ErrBadConfig wraps every configuration error of this package.
var ErrBadConfig = errors.New("bad configuration")

// NewResponder builds a Responder. The MAC must be unicast and every VIP
// a valid unicast address.
func NewResponder(cfg ResponderConfig) (*Responder, error) {
	if !cfg.MAC.IsUnicast() {
		return nil, fmt.Errorf("%w: responder MAC %v is not a unicast address", ErrBadConfig, cfg.MAC)
	}
	r := &Responder{mac: cfg.MAC, vlan: cfg.VLAN, onConflict: cfg.OnConflict}
	if err := r.SetVIPs(cfg.VIPs); err != nil {
		return nil, err
	}
	return r, nil
}

// SetVIPs atomically replaces the VIP set (on a configuration change). On
// error the old set stays.
func (r *Responder) SetVIPs(vips []netip.Addr) error {
	s := &vipSet{m: make(map[netip.Addr]struct{}, len(vips))}
	for i, v := range vips {
		if err := checkUnicast(v); err != nil {
			return fmt.Errorf("%w: VIP %d (%v): %v", ErrBadConfig, i, v, err)
		}
		s.m[v.Unmap()] = struct{}{}
	}
	r.vips.Store(s)
	return nil
}

// Owns says whether vip is one of the VIPs the responder answers for.
func (r *Responder) Owns(vip netip.Addr) bool {
	return r.vips.Load().has(vip.Unmap())
}

func checkUnicast(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("not a valid address")
	case a.IsUnspecified():
		return errors.New("unspecified address")
	case a.IsMulticast():
		return errors.New("multicast address")
	case a.Unmap().Is4() && a.Unmap() == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return errors.New("broadcast address")
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (r *Responder) Stats() ResponderStats {
	return ResponderStats{
		Requests:  r.requests.Load(),
		Probes:    r.probes.Load(),
		Replies:   r.replies.Load(),
		Conflicts: r.conflicts.Load(),
		Malformed: r.malformed.Load(),
	}
}

// Handle looks at one received frame. If it is an ARP request for a VIP
// (probes included) or a neighbor solicitation for a VIP, Handle writes
// the reply into out (with the request's VLAN tags) and returns its length
// and true. Everything else returns false: other traffic, our own frames,
// gratuitous announcements by others (counted as conflicts, never
// answered), malformed frames. out should hold MaxFrameLen bytes; a
// shorter out gets no reply. Handle does not allocate.
func (r *Responder) Handle(frame []byte, out []byte) (n int, ok bool) {
	var e Ethernet
	etype, _, f := parseEthernet(frame, &e)
	if !f.ok() || e.Src == r.mac || !r.onVLAN(&e) {
		return 0, false
	}
	switch etype {
	case wire.EtherTypeARP:
		return r.handleARP(frame, out)
	case wire.EtherTypeIPv6:
		return r.handleNDP(frame, out)
	}
	return 0, false
}

// onVLAN says whether a frame is on the VIPs' VLAN (any, when none is
// configured).
func (r *Responder) onVLAN(e *Ethernet) bool {
	return !r.vlan.Tagged || e.VLAN.Tagged && e.VLAN.ID() == r.vlan.ID()
}

func (r *Responder) handleARP(frame, out []byte) (int, bool) {
	var p ARPPacket
	if f := parseARP(frame, &p); !f.ok() {
		r.malformed.Add(1)
		return 0, false
	}
	if p.SenderMAC == r.mac {
		return 0, false // our own request or announcement, looped back
	}
	set := r.vips.Load()
	if set.has(p.SenderIP) {
		// Whatever the operation, the sender says "VIP is at my MAC":
		// that is someone else claiming our address (RFC 5227 2.4).
		r.conflict(p.SenderIP, p.SenderMAC, &p.Ethernet)
	}
	if p.Op != OpRequest || !set.has(p.TargetIP) || p.IsGratuitous() {
		// Replies are not for us to answer, and a gratuitous request is
		// an announcement, not a question.
		return 0, false
	}
	if p.Ethernet.Dst != broadcast && p.Ethernet.Dst != r.mac {
		return 0, false // unicast to another station, seen promiscuously
	}
	r.requests.Add(1)
	if p.IsProbe() {
		// RFC 5227 2.1.1: a probe for an address in use is answered, so
		// the prober backs off; the reply's target IP is 0.0.0.0.
		r.probes.Add(1)
	}
	if !p.SenderMAC.IsUnicast() {
		return 0, false // nowhere sane to send the reply
	}
	rep := ARPPacket{
		Ethernet:  Ethernet{Dst: p.SenderMAC, Src: r.mac, VLAN: p.Ethernet.VLAN, Outer: p.Ethernet.Outer},
		Op:        OpReply,
		SenderMAC: r.mac,
		SenderIP:  p.TargetIP,
		TargetMAC: p.SenderMAC,
		TargetIP:  p.SenderIP,
	}
	n := rep.Encode(out)
	if n == 0 {
		return 0, false
	}
	r.replies.Add(1)
	return n, true
}

func (r *Responder) handleNDP(frame, out []byte) (int, bool) {
	var p NDPPacket
	if f := parseNDP(frame, &p); !f.ok() {
		if !errors.Is(f.err, ErrNotNDP) {
			r.malformed.Add(1)
		}
		return 0, false
	}
	set := r.vips.Load()
	if p.Type == TypeNeighborAdvertisement {
		mac := p.Ethernet.Src
		if p.HasTargetLL {
			mac = p.TargetLL
		}
		if set.has(p.Target) && mac != r.mac {
			r.conflict(p.Target, mac, &p.Ethernet)
		}
		return 0, false
	}
	srcMAC := p.Ethernet.Src
	if p.HasSourceLL {
		srcMAC = p.SourceLL
	}
	if srcMAC == r.mac {
		return 0, false
	}
	if set.has(p.Src) {
		r.conflict(p.Src, srcMAC, &p.Ethernet)
	}
	if !set.has(p.Target) {
		return 0, false
	}
	sn := solicitedNode(p.Target)
	if (p.Ethernet.Dst != r.mac && p.Ethernet.Dst != multicastMAC(sn)) || (p.Dst != sn && p.Dst != p.Target) {
		return 0, false // not addressed to us
	}
	r.requests.Add(1)
	rep := NDPPacket{
		Ethernet:    Ethernet{Src: r.mac, VLAN: p.Ethernet.VLAN, Outer: p.Ethernet.Outer},
		Src:         p.Target,
		HopLimit:    255,
		Type:        TypeNeighborAdvertisement,
		Target:      p.Target,
		TargetLL:    r.mac,
		HasTargetLL: true,
	}
	if p.Src.IsUnspecified() {
		// Duplicate address detection for our VIP: RFC 4861 7.2.4 says
		// to answer to all-nodes, unsolicited, so the prober sees it.
		r.probes.Add(1)
		rep.Dst, rep.Ethernet.Dst, rep.Flags = allNodes, multicastMAC(allNodes), FlagOverride
	} else {
		if !srcMAC.IsUnicast() {
			return 0, false
		}
		rep.Dst, rep.Ethernet.Dst, rep.Flags = p.Src, srcMAC, FlagSolicited|FlagOverride
	}
	n := rep.Encode(out)
	if n == 0 {
		return 0, false
	}
	r.replies.Add(1)
	return n, true
}

func (r *Responder) conflict(vip netip.Addr, mac MAC, e *Ethernet) {
	r.conflicts.Add(1)
	if r.onConflict != nil {
		r.onConflict(Conflict{VIP: vip, MAC: mac, VLAN: e.VLAN, Outer: e.Outer})
	}
}
