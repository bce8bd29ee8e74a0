package link

import "encoding/binary"

// vnetHdrLen is the size of struct virtio_net_hdr, which PACKET_VNET_HDR puts
// in front of every frame read from and written to the socket.
const vnetHdrLen = 10

// virtio_net_hdr flags.
const (
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
)

// decodeVnetHdr parses a virtio_net_hdr. AF_PACKET uses the legacy virtio
// byte order, which is the host's (vio_le() in af_packet.c). Flags other than
// NEEDS_CSUM (DATA_VALID: checksum already verified) need nothing on the way
// out and are dropped. ok is false when b is too short.
func decodeVnetHdr(b []byte) (o Offload, ok bool) {
	if len(b) < vnetHdrLen {
		return Offload{}, false
	}
	e := binary.NativeEndian
	return Offload{
		CsumPartial: b[0]&vnetFlagNeedsCsum != 0,
		GSOType:     b[1],
		HdrLen:      e.Uint16(b[2:]),
		GSOSize:     e.Uint16(b[4:]),
		CsumStart:   e.Uint16(b[6:]),
		CsumOffset:  e.Uint16(b[8:]),
	}, true
}

// encodeVnetHdr writes o as a virtio_net_hdr into b[:vnetHdrLen]. Checksum
// offsets are only meaningful with CsumPartial, so they are zeroed without it
// (the kernel would ignore them anyway).
func encodeVnetHdr(b []byte, o Offload) {
	_ = b[vnetHdrLen-1]
	e := binary.NativeEndian
	b[0] = 0
	start, off := o.CsumStart, o.CsumOffset
	if o.CsumPartial {
		b[0] = vnetFlagNeedsCsum
	} else {
		start, off = 0, 0
	}
	b[1] = o.GSOType
	e.PutUint16(b[2:], o.HdrLen)
	e.PutUint16(b[4:], o.GSOSize)
	e.PutUint16(b[6:], start)
	e.PutUint16(b[8:], off)
}

// shiftForTag adjusts offsets that the kernel measured on the untagged frame
// to a frame into which a 4-byte 802.1Q tag was re-inserted after the MACs.
func (o Offload) shiftForTag() Offload {
	if o.CsumPartial {
		o.CsumStart += vlanHeadroom
	}
	if o.HdrLen != 0 {
		o.HdrLen += vlanHeadroom
	}
	return o
}

// insertTag re-inserts an 802.1Q (or 802.1ad) tag that the kernel stripped
// into auxdata. buf holds vlanHeadroom bytes of headroom followed by the n
// received bytes; the 12 MAC bytes move 4 bytes to the front and the tag goes
// into the gap, so the payload is never copied. A frame too short to carry
// MAC addresses is returned untouched.
func insertTag(buf []byte, n int, tpid, tci uint16) []byte {
	if n < 12 || len(buf) < vlanHeadroom+n {
		return buf[vlanHeadroom : vlanHeadroom+n]
	}
	copy(buf[0:12], buf[vlanHeadroom:vlanHeadroom+12])
	binary.BigEndian.PutUint16(buf[12:], tpid)
	binary.BigEndian.PutUint16(buf[14:], tci)
	return buf[:vlanHeadroom+n]
}
