package lab

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/drlb/drlb/testbed"
)

// testLab is a lab as testbed plans it, without namespaces: enough to
// print and draw.
func testLab() *testbed.Lab {
	port := func(ip string, mac byte) testbed.Port {
		return testbed.Port{Iface: "eth0", IPv4: netip.MustParseAddr(ip), MAC: []byte{2, 0, 0xc6, 0x12, 0, mac}}
	}
	host := func(name, ip string, mac byte) *testbed.Host {
		return &testbed.Host{Name: name, NSName: "x-" + name, Port: port(ip, mac)}
	}
	return &testbed.Lab{
		Name:         "x",
		Client:       host("client", "198.18.1.10", 0x0a),
		Router:       host("router", "198.18.0.1", 1),
		RouterUplink: testbed.Port{Iface: "eth1", IPv4: netip.MustParseAddr("198.18.1.1"), MAC: []byte{2, 1, 0xc6, 0x12, 1, 1}},
		Director:     host("director", "198.18.0.2", 2),
		RealServers:  []*testbed.Host{host("rs1", "198.18.0.11", 0x0b), host("rs2", "198.18.0.12", 0x0c)},
		Switch:       &testbed.Host{Name: "switch", NSName: "x-switch", Port: testbed.Port{Iface: "br0"}},
		VIP:          netip.MustParseAddr("198.18.0.100"),
	}
}

func TestPrintTopology(t *testing.T) {
	l := testLab()
	var b bytes.Buffer
	printTopology(&b, l)
	out := b.String()
	for _, want := range []string{
		"routed link 198.18.1.0/24", "LAN 198.18.0.0/24: bridge br0 in namespace x-switch",
		"+- director  eth0  198.18.0.2   02:00:c6:12:00:02  x-director",
		"+- rs2       eth0  198.18.0.12  02:00:c6:12:00:0c  x-rs2", "eth1  198.18.1.1   02:01:c6:12:01:01",
		"VIP 198.18.0.100, port 80",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("topology lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing space: %q", line)
		}
	}
}
