package wire

import "encoding/binary"

// EtherTypes drlb reads or writes. They are untyped so that they compare
// with a uint16 read from a frame and fit a BPF instruction's uint32 alike.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86dd
	EtherTypeVLAN = 0x8100 // 802.1Q tag (customer tag, C-tag)
	EtherTypeQinQ = 0x88a8 // 802.1ad service tag (S-tag), the outer tag of QinQ
)

// Header sizes.
const (
	EthernetLen = 14 // destination and source MAC, EtherType
	TagLen      = 4  // one VLAN tag: TPID and TCI
	// MaxEthernetLen is the longest link header EtherType skips: Ethernet
	// with an outer and an inner tag.
	MaxEthernetLen = EthernetLen + 2*TagLen
)

// EtherType returns the frame's payload EtherType and the offset of its
// payload, skipping an optional 802.1ad (0x88a8) or 802.1Q (0x8100) outer
// tag and an optional inner 802.1Q tag. Both outer TPIDs are accepted
// because providers stack 802.1Q in 802.1Q as well as use 802.1ad, and a
// kernel that strips one tag into auxdata hands the other one on.
//
// A third tag is not skipped: etherType is then EtherTypeVLAN (or
// EtherTypeQinQ for an S-tag inside a C-tag), which no caller takes for its
// own. ok is false when the frame is too short for what its header
// announces (less than 14 bytes, or a tag cut short).
func EtherType(b []byte) (etherType uint16, payload int, ok bool) {
	if len(b) < EthernetLen {
		return 0, 0, false
	}
	et, off := binary.BigEndian.Uint16(b[12:14]), EthernetLen
	if et != EtherTypeQinQ && et != EtherTypeVLAN {
		return et, off, true
	}
	if len(b) < off+TagLen {
		return 0, 0, false
	}
	et, off = binary.BigEndian.Uint16(b[off+2:off+4]), off+TagLen
	if et != EtherTypeVLAN {
		return et, off, true
	}
	if len(b) < off+TagLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(b[off+2 : off+4]), off + TagLen, true
}

// Tag is one VLAN tag as it stands in a frame: the TPID that announced it
// (EtherTypeVLAN or EtherTypeQinQ) and its tag control information. The
// whole TCI is kept, not just the VLAN ID, so that a reply can carry the
// very tag (priority and DEI bits too) of its request.
type Tag struct {
	TPID uint16
	TCI  uint16
}

// VID is the tag's 12-bit VLAN identifier.
func (t Tag) VID() uint16 { return t.TCI & 0x0fff }

// Tags returns the VLAN tags EtherType skips, outermost first, and how
// many there are (0, 1 or 2); none when EtherType is not ok.
func Tags(b []byte) (tags [2]Tag, n int) {
	_, payload, ok := EtherType(b)
	if !ok {
		return tags, 0
	}
	n = (payload - EthernetLen) / TagLen
	for i := range n {
		o := 12 + i*TagLen
		tags[i] = Tag{TPID: binary.BigEndian.Uint16(b[o:]), TCI: binary.BigEndian.Uint16(b[o+2:])}
	}
	return tags, n
}
