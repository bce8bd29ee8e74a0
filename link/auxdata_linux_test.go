package link

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, cmsgAlign(unix.SizeofCmsghdr+len(data)))
	e := binary.NativeEndian
	l := unix.SizeofCmsghdr + len(data)
	if unsafe.Sizeof(uintptr(0)) == 8 {
		e.PutUint64(b, uint64(l))
	} else {
		e.PutUint32(b, uint32(l))
	}
	e.PutUint32(b[unix.SizeofCmsghdr-8:], uint32(level))
	e.PutUint32(b[unix.SizeofCmsghdr-4:], uint32(typ))
	copy(b[unix.SizeofCmsghdr:], data)
	return b
}

func auxBytes(status uint32, tci, tpid uint16) []byte {
	b := make([]byte, auxdataLen)
	e := binary.NativeEndian
	e.PutUint32(b[0:], status)
	e.PutUint32(b[4:], 1514)
	e.PutUint32(b[8:], 1514)
	e.PutUint16(b[16:], tci)
	e.PutUint16(b[18:], tpid)
	return b
}

func TestParseAuxdata(t *testing.T) {
	other := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMP, make([]byte, 16))
	cases := []struct {
		name string
		ctrl []byte
		ok   bool
		want auxdata
	}{
		{"vlan", cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxBytes(unix.TP_STATUS_VLAN_VALID, 100, 0)), true,
			auxdata{status: unix.TP_STATUS_VLAN_VALID, tci: 100, tpid: etherTypeVLAN}},
		{"vlan with tpid", cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxBytes(unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 7, 0x88a8)), true,
			auxdata{status: unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID, tci: 7, tpid: 0x88a8}},
		{"csum not ready", cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxBytes(unix.TP_STATUS_CSUMNOTREADY, 55, 0)), true,
			auxdata{status: unix.TP_STATUS_CSUMNOTREADY}},
		{"after another cmsg", append(other, cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxBytes(unix.TP_STATUS_VLAN_VALID, 3, 0))...), true,
			auxdata{status: unix.TP_STATUS_VLAN_VALID, tci: 3, tpid: etherTypeVLAN}},
		{"other only", other, false, auxdata{}},
		{"short data", cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, make([]byte, 8)), false, auxdata{}},
		{"length beyond buffer", cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxBytes(0, 0, 0))[:20], false, auxdata{}},
		{"empty", nil, false, auxdata{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseAuxdata(c.ctrl)
			if ok != c.ok || got != c.want {
				t.Fatalf("got %+v ok=%v, want %+v ok=%v", got, ok, c.want, c.ok)
			}
			if ok && got.csumNotReady() != (c.want.status&unix.TP_STATUS_CSUMNOTREADY != 0) {
				t.Fatal("csumNotReady wrong")
			}
		})
	}
}

func FuzzParseAuxdata(f *testing.F) {
	f.Add(cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxBytes(unix.TP_STATUS_VLAN_VALID, 100, 0)))
	f.Add(append(cmsg(unix.SOL_SOCKET, 1, nil), cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, auxBytes(0, 0, 0))...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ctrl []byte) {
		a, ok := parseAuxdata(ctrl)
		if !ok && a != (auxdata{}) {
			t.Fatalf("not ok but %+v", a)
		}
		if a.vlanValid() && a.tpid == 0 && a.status&unix.TP_STATUS_VLAN_TPID_VALID == 0 {
			t.Fatal("VLAN without TPID")
		}
	})
}
