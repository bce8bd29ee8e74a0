package health_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/health"
	"golang.org/x/net/dns/dnsmessage"
)

// A dns check passes on an answer with a record, and fails on NXDOMAIN.
func ExampleProbe_dns() {
	// A name server knowing one name, standing in for a real server.
	pc, err := net.ListenPacket("udp", "198.18.0.53:0") // on the real server
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			q := m.Questions[0]
			m.Response = true
			if q.Name.String() == "www.example.org." && q.Type == dnsmessage.TypeA {
				m.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Class: q.Class, TTL: 60},
					Body:   &dnsmessage.AResource{A: [4]byte{198, 18, 0, 80}},
				}}
			} else {
				m.RCode = dnsmessage.RCodeNameError
			}
			if b, err := m.Pack(); err == nil {
				pc.WriteTo(b, from)
			}
		}
	}()
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())

	for _, name := range []string{"www.example.org", "ftp.example.org"} {
		check := config.Check{Type: "dns", DNSName: name, DNSType: "A", Timeout: time.Second}
		err := health.Probe(context.Background(), health.Target{Addr: addr, Check: check})
		if err != nil {
			fmt.Println(name, "fails:", strings.TrimPrefix(err.Error(), "dns "+addr.String()+": "))
			continue
		}
		fmt.Println(name, "passes")
	}
	// Prints (not run: the tests serve and dial only in a network
	// namespace of their own, TestProbeDNS checks the same):
	//	www.example.org passes
	//	ftp.example.org fails: ftp.example.org. A: answer NXDOMAIN
}
