package testbed

import (
	"fmt"
	"net/netip"
)

// plan lays out the lab's hosts and addresses without touching the kernel,
// so the address plan is testable anywhere.
func plan(o Options) *Lab {
	l := &Lab{Name: o.Name, VIP: vip4, VIP6: vip6, MTU: o.MTU}
	if o.RoutedVIP {
		l.VIP, l.VIP6 = routedVIP4, routedVIP6
	}
	lanHostAt := func(name string, n byte) *Host {
		v4, v6 := lanHost(n)
		return &Host{Name: name, NSName: o.Name + "-" + name, Port: Port{
			Iface: lanIface, MAC: macFor(0, v4), IPv4: v4, IPv6: v6, BridgePort: name,
		}}
	}
	l.Router = lanHostAt("router", 1)
	l.Director = lanHostAt("director", 2)
	l.Directors = []*Host{l.Director}
	for i := 2; i <= o.Directors; i++ {
		l.Directors = append(l.Directors, lanHostAt(fmt.Sprintf("director%d", i), byte(1+i)))
	}
	for _, d := range l.Directors {
		d.Queues = o.DirectorQueues
	}
	for i := 1; i <= o.RealServers; i++ {
		l.RealServers = append(l.RealServers, lanHostAt(fmt.Sprintf("rs%d", i), byte(10+i)))
	}
	if o.LANClient {
		l.LANClient = lanHostAt("lanclient", 50)
	}
	c4, c6 := clientLinkHost(10)
	l.Client = &Host{Name: "client", NSName: o.Name + "-client", Port: Port{
		Iface: lanIface, MAC: macFor(0, c4), IPv4: c4, IPv6: c6,
	}}
	r4, r6 := clientLinkHost(1)
	l.RouterUplink = Port{Iface: uplinkIface, MAC: macFor(1, r4), IPv4: r4, IPv6: r6}
	l.Switch = &Host{Name: "switch", NSName: o.Name + "-switch", Port: Port{Iface: bridgeName}}
	return l
}

// lanHosts are the hosts plugged into the bridge.
func (l *Lab) lanHosts() []*Host {
	hs := []*Host{l.Router}
	hs = append(hs, l.Directors...)
	hs = append(hs, l.RealServers...)
	if l.LANClient != nil {
		hs = append(hs, l.LANClient)
	}
	return hs
}

// gateway returns the default gateways for h: the router's address on h's link.
func (l *Lab) gateway(h *Host) (netip.Addr, netip.Addr) {
	if h == l.Client {
		return l.RouterUplink.IPv4, l.RouterUplink.IPv6
	}
	return l.Router.IPv4, l.Router.IPv6
}
