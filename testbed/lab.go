package testbed

import (
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netns"
)

// Port is one interface of a host.
type Port struct {
	// Iface is the interface name inside the host's namespace ("eth0").
	Iface string
	// MAC is the interface's hardware address (02:00:c6:12:00:0b for .11).
	MAC net.HardwareAddr
	// IPv4 and IPv6 are the interface's addresses (/24 and /64).
	IPv4, IPv6 netip.Addr
	// BridgePort is the veth peer's name in the switch namespace, empty for
	// the point-to-point client link. Benchmarks may shape or capture there.
	BridgePort string
	// Queues is how many receive and transmit queues Iface has (0: one;
	// Options.DirectorQueues).
	Queues int
}

// Host is one network namespace of the lab.
type Host struct {
	// Name is the role: "client", "router", "director", "rs1", "lanclient", "switch".
	Name string
	// NSName is the namespace's name under /var/run/netns ("<lab>-<Name>").
	NSName string
	// NS is an open handle on the namespace, valid until Lab.Close.
	NS netns.NsHandle
	// Port is the LAN-facing interface (the client's only one). The switch
	// has Iface "br0" and no addresses.
	Port
}

// Lab is a running topology. Its fields are read-only after New.
type Lab struct {
	// Name is the namespace prefix (Options.Name).
	Name string
	// Client is the routed client, behind the router.
	Client *Host
	// Router joins the client link (RouterUplink) and the LAN (Router.Port).
	Router *Host
	// RouterUplink is the router's client-facing interface, eth1.
	RouterUplink Port
	// Director is where drlb runs; its LAN interface is eth0.
	Director *Host
	// Directors are every director, Director first (Options.Directors).
	Directors []*Host
	// LANClient is a client on the LAN itself, nil unless Options.LANClient.
	LANClient *Host
	// RealServers are rs1, rs2, ... in order.
	RealServers []*Host
	// Switch holds the bridge br0 of the LAN.
	Switch *Host
	// VIP and VIP6 are the virtual service addresses.
	VIP, VIP6 netip.Addr
	// MTU of every link.
	MTU int

	// mu guards closed and the namespace handles against Close racing Do.
	mu       sync.RWMutex
	closed   bool
	closeErr error
	// created lists namespace names in creation order, for teardown.
	created []string
	// svc is the running services, if any.
	svc *services
	// birds are the BIRD processes StartBIRD ran (Linux), stopped by Close.
	birds []*BIRD
}

// Hosts returns every host with addresses: client, router, director, the
// real servers and the LAN client if any (not the switch).
func (l *Lab) Hosts() []*Host {
	hs := []*Host{l.Client, l.Router}
	hs = append(hs, l.Directors...)
	hs = append(hs, l.RealServers...)
	if l.LANClient != nil {
		hs = append(hs, l.LANClient)
	}
	return hs
}

// Host returns the host with the given role name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range append(l.Hosts(), l.Switch) {
		if h != nil && h.Name == name {
			return h
		}
	}
	return nil
}
