// Package wire: temporary stand-in until the shared wire package lands.
package wire

import "encoding/binary"

// EtherTypes.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86dd
	EtherTypeVLAN = 0x8100
	EtherTypeQinQ = 0x88a8
)

// EtherType returns the payload EtherType behind up to two VLAN tags.
func EtherType(b []byte) (etherType uint16, payload int, ok bool) {
	off := 12
	for tags := 0; ; tags++ {
		if len(b) < off+2 {
			return 0, 0, false
		}
		et := binary.BigEndian.Uint16(b[off:])
		if (et == EtherTypeVLAN || et == EtherTypeQinQ) && tags < 2 {
			off += 4
			continue
		}
		return et, off + 2, true
	}
}
