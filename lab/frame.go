package lab

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/drlb/drlb/internal/wire"
)

// Protocol numbers the walkthrough reads.
const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17

	arpRequest = 1
	arpReply   = 2
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// frame is one captured frame with what the walkthrough needs decoded. It
// is for people, not for the data path: it copies and decodes freely.
type frame struct {
	at   time.Time
	data []byte

	dst, src  net.HardwareAddr
	etherType uint16 // behind any VLAN tags, as the director reads it

	// ARP (etherType == wire.EtherTypeARP).
	arpOp                    uint16
	arpSenderMAC             net.HardwareAddr
	arpSenderIP, arpTargetIP netip.Addr

	// IPv4 (etherType == wire.EtherTypeIPv4).
	ip             []byte // the IP packet, without Ethernet header or padding
	ipSrc, ipDst   netip.Addr
	ttl, proto     uint8
	sport, dport   uint16 // TCP or UDP
	tcpFlags       uint8
	tcpPayloadSize int
	// mss is a SYN's maximum segment size option, 0 without one.
	mss uint16
	// df is the IPv4 don't-fragment bit.
	df bool
}

// parseFrame decodes b (kept, not copied). Anything it does not understand
// is left zero; it never fails and never panics on short or odd input.
func parseFrame(at time.Time, b []byte) frame {
	f := frame{at: at, data: b}
	if len(b) < 14 {
		return f
	}
	f.dst, f.src = net.HardwareAddr(b[0:6]), net.HardwareAddr(b[6:12])
	et, off, ok := wire.EtherType(b)
	if !ok {
		// A tag cut short: show the type the frame announces, decode nothing.
		f.etherType = binary.BigEndian.Uint16(b[12:14])
		return f
	}
	f.etherType = et
	p := b[off:]
	switch f.etherType {
	case wire.EtherTypeARP:
		// Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4.
		if len(p) < 28 || binary.BigEndian.Uint16(p[0:2]) != 1 || binary.BigEndian.Uint16(p[2:4]) != wire.EtherTypeIPv4 || p[4] != 6 || p[5] != 4 {
			return f
		}
		f.arpOp = binary.BigEndian.Uint16(p[6:8])
		f.arpSenderMAC = net.HardwareAddr(p[8:14])
		f.arpSenderIP = netip.AddrFrom4([4]byte(p[14:18]))
		f.arpTargetIP = netip.AddrFrom4([4]byte(p[24:28]))
	case wire.EtherTypeIPv4:
		if len(p) < 20 || p[0]>>4 != 4 {
			return f
		}
		ihl := int(p[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(p[2:4]))
		if ihl < 20 || total < ihl || total > len(p) {
			// A super-frame's total length may be 0 (GSO); keep what is there.
			total = len(p)
			if ihl < 20 || ihl > total {
				return f
			}
		}
		f.ip = p[:total]
		f.ttl, f.proto = p[8], p[9]
		f.ipSrc = netip.AddrFrom4([4]byte(p[12:16]))
		f.ipDst = netip.AddrFrom4([4]byte(p[16:20]))
		fragment := binary.BigEndian.Uint16(p[6:8])&0x1fff != 0
		f.df = p[6]&0x40 != 0
		switch {
		case f.proto == protoTCP && !fragment && len(f.ip) >= ihl+20:
			t := f.ip[ihl:]
			f.sport = binary.BigEndian.Uint16(t[0:2])
			f.dport = binary.BigEndian.Uint16(t[2:4])
			f.tcpFlags = t[13]
			if doff := int(t[12]>>4) * 4; doff >= 20 && doff <= len(t) {
				f.tcpPayloadSize = len(t) - doff
				if f.tcpFlags&tcpSYN != 0 {
					f.mss = mssOption(t[20:doff])
				}
			}
		case f.proto == protoUDP && !fragment && len(f.ip) >= ihl+8:
			f.sport = binary.BigEndian.Uint16(f.ip[ihl : ihl+2])
			f.dport = binary.BigEndian.Uint16(f.ip[ihl+2 : ihl+4])
		}
	}
	return f
}

// mssOption finds the MSS in TCP options (kind 2, length 4), or 0. The
// walk is bounded by the options' length and stops at a malformed one.
func mssOption(opts []byte) uint16 {
	for i := 0; i < len(opts); {
		switch kind := opts[i]; {
		case kind == 0: // end of options
			return 0
		case kind == 1: // no-op
			i++
		case i+1 >= len(opts) || opts[i+1] < 2:
			return 0
		case kind == 2 && opts[i+1] == 4 && i+4 <= len(opts):
			return binary.BigEndian.Uint16(opts[i+2 : i+4])
		default:
			i += int(opts[i+1])
		}
	}
	return 0
}

// isTCP reports whether f is TCP from src to dst.
func (f *frame) isTCP(src, dst netip.AddrPort) bool {
	return f.proto == protoTCP && f.ipSrc == src.Addr() && f.sport == src.Port() &&
		f.ipDst == dst.Addr() && f.dport == dst.Port()
}

// isSYN reports a connection's first segment (SYN without ACK).
func (f *frame) isSYN() bool { return f.tcpFlags&(tcpSYN|tcpACK) == tcpSYN }

// isSYNACK reports a server's answer to a SYN.
func (f *frame) isSYNACK() bool { return f.tcpFlags&(tcpSYN|tcpACK) == tcpSYN|tcpACK }

// flagNames spells TCP flags the way tcpdump does.
func flagNames(fl uint8) string {
	s := ""
	for _, x := range []struct {
		bit  uint8
		name string
	}{{tcpSYN, "S"}, {tcpFIN, "F"}, {tcpRST, "R"}, {0x08, "P"}, {tcpACK, "."}} {
		if fl&x.bit != 0 {
			s += x.name
		}
	}
	return "[" + s + "]"
}
