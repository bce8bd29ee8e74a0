package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// ErrFilter is wrapped by the errors of VIPFilter.
var ErrFilter = errors.New("link: VIP filter")

// FilterAccept is the value the VIP filter returns for an accepted frame:
// the socket keeps that many bytes, more than MaxFrame, so super-frames
// arrive whole. A rejected frame gets 0 and never reaches user space.
const FilterAccept = 1 << 18

// maxFilterLen is BPF_MAXINSNS, the kernel's limit for a classic filter.
const maxFilterLen = 4096

// Ethertypes, IP protocol and ICMPv6 type the filter looks at.
const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100
	etherTypeIPv6 = 0x86dd
	protoICMPv6   = 58
	icmpv6NS      = 135 // neighbor solicitation
	icmpv6NA      = 136 // neighbor advertisement
)

// VIPFilter builds a classic BPF socket filter (for Config.Filter) that
// accepts:
//   - every ARP frame (who-has for a VIP, replies for real servers);
//   - IPv4 frames whose destination is one of the IPv4 VIPs;
//   - IPv6 frames whose destination is one of the IPv6 VIPs and, when there
//     is at least one IPv6 VIP, every ICMPv6 neighbor solicitation and
//     advertisement with the ICMPv6 header right after the fixed header,
//     whatever its destination (a VIP's solicited-node group, all-nodes,
//     a unicast re-check of the VIP, the real servers' advertisements to
//     the director), so drlb can answer for the VIP and resolve its IPv6
//     real servers;
//
// each untagged or behind one 802.1Q tag. The kernel usually strips the tag
// into auxdata before the filter runs, so the untagged path is the common
// one; the tagged path covers frames that keep their tag (a second tag,
// devices that do not strip). Everything else is rejected in the kernel.
//
// The program keeps the link-layer header length (14 or 18) in X and loads
// IP fields relative to it, so each VIP is compared once. IPv4-mapped IPv6
// addresses count as IPv4; zones are ignored; duplicates are removed.
func VIPFilter(vips []netip.Addr) ([]bpf.RawInstruction, error) {
	var v4 []uint32
	var v6 [][4]uint32
	seen := make(map[netip.Addr]bool, len(vips))
	for i, a := range vips {
		if !a.IsValid() {
			return nil, fmt.Errorf("%w: VIP %d: invalid (zero) address", ErrFilter, i)
		}
		a = a.Unmap().WithZone("")
		if seen[a] {
			continue
		}
		seen[a] = true
		if a.Is4() {
			b := a.As4()
			v4 = append(v4, binary.BigEndian.Uint32(b[:]))
			continue
		}
		b := a.As16()
		var w [4]uint32
		for j := range w {
			w[j] = binary.BigEndian.Uint32(b[4*j:])
		}
		v6 = append(v6, w)
	}

	accept := bpf.RetConstant{Val: FilterAccept}
	reject := bpf.RetConstant{Val: 0}

	// IPv4 block: A = destination address, one compare per VIP.
	blk4 := []bpf.Instruction{bpf.LoadIndirect{Off: 16, Size: 4}}
	for _, w := range v4 {
		blk4 = append(blk4, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: w, SkipTrue: 1}, accept)
	}
	blk4 = append(blk4, reject)

	// IPv6 block: per VIP four word compares, each skipping to the next VIP
	// on a mismatch; then the neighbor solicitation check.
	var blk6 []bpf.Instruction
	for _, w := range v6 {
		for j := range 4 {
			skip := uint8(7 - 2*j) // to the first instruction of the next VIP
			blk6 = append(blk6,
				bpf.LoadIndirect{Off: uint32(24 + 4*j), Size: 4},
				bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: w[j], SkipTrue: skip})
		}
		blk6 = append(blk6, accept)
	}
	if len(v6) > 0 {
		// Neighbor discovery: solicitations for a VIP (to its
		// solicited-node group, or unicast when a neighbour re-checks
		// it) and the real servers' advertisements answering the
		// director's own solicitations (unicast to the director).
		// Both are ICMPv6 right after the fixed header, as RFC 4861
		// frames always are.
		blk6 = append(blk6,
			bpf.LoadIndirect{Off: 6, Size: 1},                                 // next header
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 4}, // -> reject
			bpf.LoadIndirect{Off: 40, Size: 1},                                // ICMPv6 type
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpv6NS, SkipTrue: 1},       // -> accept
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpv6NA, SkipTrue: 1},    // -> reject
			accept,
		)
	}
	blk6 = append(blk6, reject)

	// Header: find the ethertype and the link header length (X), dispatch.
	const hdrLen = 13
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeVLAN, SkipTrue: 3},
		/* 2 */ bpf.LoadAbsolute{Off: 16, Size: 2}, // inner ethertype
		/* 3 */ bpf.LoadConstant{Dst: bpf.RegX, Val: 18},
		/* 4 */ bpf.Jump{Skip: 1},
		/* 5 */ bpf.LoadConstant{Dst: bpf.RegX, Val: 14},
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeARP, SkipTrue: 1},
		/* 7 */ accept,
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv4, SkipTrue: 1},
		/* 9 */ bpf.Jump{Skip: uint32(hdrLen - 10)},
		/* 10 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: 1},
		/* 11 */ bpf.Jump{Skip: uint32(hdrLen + len(blk4) - 12)},
		/* 12 */ reject,
	}
	prog = append(prog, blk4...)
	prog = append(prog, blk6...)
	if most := maxFilterLen - len(outgoingPrefix); len(prog) > most {
		return nil, fmt.Errorf("%w: %d IPv4 and %d IPv6 VIPs need %d instructions, more than the kernel's %d less the %d drlb puts in front",
			ErrFilter, len(v4), len(v6), len(prog), maxFilterLen, len(outgoingPrefix))
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilter, err)
	}
	return raw, nil
}
