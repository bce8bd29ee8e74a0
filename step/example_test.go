package step_test

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/step"
)

// A director's step answers the router's ARP request for the VIP, then
// forwards the client's SYN to a real server; the narrator says so.
func Example() {
	cfg := testConfig()
	fw, _ := forwarder.New(cfg, forwarder.Options{MAC: directorMAC})
	mac, _ := arp.MACFrom(directorMAC)
	resp, _ := arp.NewResponder(arp.ResponderConfig{MAC: mac, VIPs: []netip.Addr{vip}})
	narrator := step.NewNarrator(os.Stdout, cfg, step.NarratorOptions{Numbered: true})
	s, _ := step.New(step.Config{Forwarder: fw, Responder: resp, Observer: narrator})

	in := []link.Frame{
		{Data: framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: broadcast}, router, vip)},
		{Data: framegen.TCP(toDirector, client, web, framegen.SYN, 1, 0, nil)},
	}
	out := s.Handle(t0, in, nil)
	fmt.Println(len(out), "frames to send")
	// Output:
	// 1 answer arp-reply arp who-has 198.18.0.100 tell 198.18.0.1 | sent 198.18.0.100 is-at 02:00:00:00:00:02
	// 2 forward new tcp 198.18.1.10:40000 -> 198.18.0.100:80 [S] | service tcp 198.18.0.100:80 (rr) | real server 198.18.0.11 | sent dst 02:00:00:00:00:11 src 02:00:00:00:00:02, IP packet unchanged
	// 2 frames to send
}
