package realserver_test

import (
	"fmt"
	"log"
	"net/netip"

	"github.com/drlb/drlb/realserver"
)

// Make this host a real server for 198.18.0.100 with eth0 facing the
// director, printing each step as a command (needs root).
func ExampleUp() {
	sys := realserver.NewSystem("/proc/sys", nil)
	steps, err := realserver.Up(sys, realserver.Config{
		VIP:   netip.MustParseAddr("198.18.0.100"),
		Iface: "eth0",
	})
	for _, s := range steps {
		fmt.Println(s) // e.g. "sysctl -w net.ipv4.conf.all.arp_ignore=1 (already set)"
	}
	if err != nil {
		log.Fatal(err)
	}
}
