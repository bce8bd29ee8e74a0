package link

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// auxdata is the part of struct tpacket_auxdata (PACKET_AUXDATA) we use.
type auxdata struct {
	status uint32 // TP_STATUS_* bits
	tci    uint16 // 802.1Q tag control information, if vlanValid
	tpid   uint16 // tag protocol identifier, 0x8100 unless told otherwise
}

const auxdataLen = 20 // sizeof(struct tpacket_auxdata)

func (a auxdata) vlanValid() bool { return a.status&unix.TP_STATUS_VLAN_VALID != 0 }

func (a auxdata) csumNotReady() bool { return a.status&unix.TP_STATUS_CSUMNOTREADY != 0 }

// cmsgAlign rounds to the control message alignment (sizeof(size_t)).
func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}

// parseAuxdata finds the PACKET_AUXDATA control message in ctrl (the
// msg_control bytes the kernel filled in) without allocating. ok is false
// when there is none or ctrl is malformed.
func parseAuxdata(ctrl []byte) (a auxdata, ok bool) {
	hdrLen := unix.SizeofCmsghdr
	e := binary.NativeEndian
	for len(ctrl) >= hdrLen {
		var l int
		if unsafe.Sizeof(uintptr(0)) == 8 {
			v := e.Uint64(ctrl)
			if v > uint64(len(ctrl)) {
				return auxdata{}, false
			}
			l = int(v)
		} else {
			l = int(e.Uint32(ctrl))
		}
		if l < hdrLen || l > len(ctrl) {
			return auxdata{}, false
		}
		off := hdrLen - 8 // cmsg_level and cmsg_type follow cmsg_len
		level := int32(e.Uint32(ctrl[off:]))
		typ := int32(e.Uint32(ctrl[off+4:]))
		data := ctrl[hdrLen:l]
		if level == unix.SOL_PACKET && typ == unix.PACKET_AUXDATA && len(data) >= auxdataLen {
			a.status = e.Uint32(data[0:])
			if a.vlanValid() {
				a.tci = e.Uint16(data[16:])
				a.tpid = unix.ETH_P_8021Q
				if a.status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					a.tpid = e.Uint16(data[18:])
				}
			}
			return a, true
		}
		next := cmsgAlign(l)
		if next >= len(ctrl) {
			break
		}
		ctrl = ctrl[next:]
	}
	return auxdata{}, false
}
