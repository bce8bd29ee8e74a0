package health

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/testutil"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// icmpServer answers each datagram it receives on testutil.LoopbackAddr
// with an ICMP destination unreachable of the given code, quoting the
// datagram's headers, as a router (or the director's own failed ARP) does.
func icmpServer(t *testing.T, code int) netip.AddrPort {
	t.Helper()
	testutil.NeedRoot(t)
	c, err := net.ListenPacket("udp4", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	raw, err := net.ListenPacket("ip4:icmp", testutil.LoopbackAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	srv := netip.MustParseAddrPort(c.LocalAddr().String())
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			cl := from.(*net.UDPAddr).AddrPort()
			// The quoted IPv4 header and the UDP header: enough for the
			// kernel to find the probe's socket.
			q := make([]byte, 28)
			q[0], q[8], q[9] = 0x45, 64, syscall.IPPROTO_UDP
			binary.BigEndian.PutUint16(q[2:], uint16(28+n))
			s, d := cl.Addr().As4(), srv.Addr().As4()
			copy(q[12:], s[:])
			copy(q[16:], d[:])
			binary.BigEndian.PutUint16(q[20:], cl.Port())
			binary.BigEndian.PutUint16(q[22:], srv.Port())
			binary.BigEndian.PutUint16(q[24:], uint16(8+n))
			m := icmp.Message{Type: ipv4.ICMPTypeDestinationUnreachable, Code: code, Body: &icmp.DstUnreach{Data: q}}
			b, err := m.Marshal(nil)
			if err != nil {
				panic(err)
			}
			raw.WriteTo(b, &net.IPAddr{IP: cl.Addr().AsSlice()})
		}
	}()
	return srv
}

// TestProbeICMPUnreachable: udp and dns checks fail on every ICMP
// destination unreachable, as keepalived's UDP_CHECK (IP_RECVERR): host
// and network unreachable too, which Linux otherwise keeps from a
// connected UDP socket (soft errors), so that a udp check took a real
// server that is off for a silent one, and passed.
func TestProbeICMPUnreachable(t *testing.T) {
	udp := config.Check{Type: "udp", Timeout: 5 * time.Second}
	dns := config.Check{Type: "dns", DNSName: ".", DNSType: "SOA", Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name  string
		code  int
		check config.Check
		want  error
	}{
		{"udp, host unreachable", 1, udp, syscall.EHOSTUNREACH},
		{"udp, network unreachable", 0, udp, syscall.ENETUNREACH},
		{"udp, port unreachable", 3, udp, syscall.ECONNREFUSED},
		{"dns, host unreachable", 1, dns, syscall.EHOSTUNREACH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := icmpServer(t, tc.code)
			err := Probe(context.Background(), Target{Addr: addr, Check: tc.check})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Probe = %v, want %v", err, tc.want)
			}
		})
	}
}
