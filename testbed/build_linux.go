package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/drlb/drlb/internal/userns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// New builds a lab: namespaces, bridge, veths, addresses, routes and
// sysctls. On any error it tears down whatever it made and returns the
// error; without root the error wraps ErrNotRoot.
func New(ctx context.Context, opts Options) (*Lab, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 || !userns.Initial() {
		return nil, fmt.Errorf("%w: building a network-namespace lab needs root in the host's user namespace (CAP_SYS_ADMIN, CAP_NET_ADMIN); run as root, e.g. with sudo", ErrNotRoot)
	}
	l := plan(o)
	if err := l.build(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("building lab %s: %w", l.Name, err), l.Close())
	}
	// For CloseAllOnSignal: a signal that kills a test binary runs none
	// of its cleanups, and the lab would outlive it.
	track(l)
	return l, nil
}

// allHosts includes the switch.
func (l *Lab) allHosts() []*Host {
	return append([]*Host{l.Switch}, l.Hosts()...)
}

func (l *Lab) build(ctx context.Context) error {
	for _, h := range l.allHosts() {
		h.NS = netns.None()
	}
	for _, h := range l.allHosts() {
		if err := ctx.Err(); err != nil {
			return err
		}
		ns, err := createNamedNS(h.NSName)
		if err != nil {
			return err
		}
		h.NS = ns
		l.created = append(l.created, h.NSName)
	}
	handles := make(map[*Host]*netlink.Handle)
	defer func() {
		for _, nh := range handles {
			nh.Close() // netlink sockets would keep the namespaces alive
		}
	}()
	for _, h := range l.allHosts() {
		nh, err := l.Netlink(h)
		if err != nil {
			return fmt.Errorf("netlink handle in %s: %w", h.NSName, err)
		}
		handles[h] = nh
		// Before any link exists, so new interfaces inherit "default".
		if err := l.Do(h, func() error { return writeSysctls(l.baseSysctls(h)) }); err != nil {
			return fmt.Errorf("%s: %w", h.NSName, err)
		}
		if err := setUp(nh, "lo"); err != nil {
			return fmt.Errorf("%s: %w", h.NSName, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sw := handles[l.Switch]
	if err := l.addBridge(sw); err != nil {
		return err
	}
	for _, h := range l.lanHosts() {
		if err := l.plugIntoBridge(sw, handles[h], h); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	if err := l.addClientLink(handles[l.Router], handles[l.Client]); err != nil {
		return err
	}
	for _, h := range l.Hosts() {
		if h == l.Router {
			continue // the router only has connected routes
		}
		gw4, gw6 := l.gateway(h)
		if err := addDefaultRoutes(handles[h], h, gw4, gw6); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	for _, rs := range l.RealServers {
		if err := l.addVIPsOnLo(handles[rs]); err != nil {
			return fmt.Errorf("%s: %w", rs.Name, err)
		}
	}
	for _, h := range l.Hosts() {
		if err := l.Do(h, func() error { return writeSysctls(l.roleSysctls(h)) }); err != nil {
			return fmt.Errorf("%s: %w", h.NSName, err)
		}
	}
	return ctx.Err()
}

// baseSysctls are set in every namespace before its links exist. IPv4
// settings are inherited from the root namespace by default, so everything
// the lab relies on is written explicitly.
func (l *Lab) baseSysctls(h *Host) []sysctl {
	if h == l.Switch {
		return []sysctl{
			// The switch needs no addresses: no DAD, no MLD, no RS chatter.
			{path: "net/ipv6/conf/all/disable_ipv6", value: "1"},
			{path: "net/ipv6/conf/default/disable_ipv6", value: "1"},
			// If br_netfilter is loaded, keep bridged frames out of iptables.
			{path: "net/bridge/bridge-nf-call-iptables", value: "0", optional: true},
			{path: "net/bridge/bridge-nf-call-ip6tables", value: "0", optional: true},
			{path: "net/bridge/bridge-nf-call-arptables", value: "0", optional: true},
		}
	}
	fwd := "0"
	if h == l.Router {
		fwd = "1"
	}
	return []sysctl{
		// Forwarding first: writing it resets other per-interface settings.
		{path: "net/ipv4/ip_forward", value: fwd},
		{path: "net/ipv6/conf/all/forwarding", value: fwd},
		{path: "net/ipv6/conf/default/forwarding", value: fwd},
		// Tests must not wait for duplicate address detection, link-local included.
		{path: "net/ipv6/conf/all/accept_dad", value: "0"},
		{path: "net/ipv6/conf/default/accept_dad", value: "0"},
		{path: "net/ipv6/conf/all/accept_ra", value: "0"},
		{path: "net/ipv6/conf/default/accept_ra", value: "0"},
		{path: "net/ipv4/conf/all/rp_filter", value: "0"},
		{path: "net/ipv4/conf/default/rp_filter", value: "0"},
		{path: "net/ipv4/conf/all/arp_ignore", value: "0"},
		{path: "net/ipv4/conf/all/arp_announce", value: "0"},
	}
}

// roleSysctls are set once the links exist.
func (l *Lab) roleSysctls(h *Host) []sysctl {
	conf := func(dev, key, v string) sysctl {
		return sysctl{path: "net/ipv4/conf/" + dev + "/" + key, value: v}
	}
	s := []sysctl{conf(h.Iface, "rp_filter", "0")}
	switch {
	case l.isDirector(h):
		// drlb sends frames back out of the interface they came in on;
		// the kernel must not answer those with ICMP redirects.
		s = append(s, conf("all", "send_redirects", "0"), conf("default", "send_redirects", "0"),
			conf(h.Iface, "send_redirects", "0"))
	case l.isRealServer(h):
		// The VIP is on lo: never answer ARP for it on the LAN, never use it
		// as the source of our own ARP requests.
		s = append(s, conf("all", "arp_ignore", "1"), conf("all", "arp_announce", "2"),
			conf(h.Iface, "arp_ignore", "1"), conf(h.Iface, "arp_announce", "2"),
			conf("lo", "rp_filter", "0"))
	}
	return s
}

func (l *Lab) isDirector(h *Host) bool {
	for _, d := range l.Directors {
		if d == h {
			return true
		}
	}
	return false
}

func (l *Lab) isRealServer(h *Host) bool {
	for _, rs := range l.RealServers {
		if rs == h {
			return true
		}
	}
	return false
}

func setUp(nh *netlink.Handle, name string) error {
	link, err := nh.LinkByName(name)
	if err != nil {
		return fmt.Errorf("finding link %s: %w", name, err)
	}
	if err := nh.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	return nil
}

func (l *Lab) addBridge(sw *netlink.Handle) error {
	snooping := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, MTU: l.MTU}, MulticastSnooping: &snooping}
	if err := sw.LinkAdd(br); err != nil {
		return fmt.Errorf("adding bridge %s in %s: %w", bridgeName, l.Switch.NSName, err)
	}
	return setUp(sw, bridgeName)
}

// plugIntoBridge creates a veth in the switch namespace whose peer lands
// directly in h's namespace as eth0, then addresses and raises both ends.
func (l *Lab) plugIntoBridge(sw, nh *netlink.Handle, h *Host) error {
	br, err := sw.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("finding bridge: %w", err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: h.BridgePort, MTU: l.MTU, Alias: l.Name + "/" + h.Name},
		PeerName:         h.Iface,
		PeerHardwareAddr: h.MAC,
		PeerNamespace:    netlink.NsFd(h.NS),
		PeerMTU:          uint32(l.MTU),
	}
	if q := h.Queues; q > 1 {
		// A generic-mode XDP program on a veth sees a frame the peer
		// sent on transmit queue k as received on queue k-1 (0 for
		// 0): the bridge port's q+1 transmit queues reach each of the
		// host's q receive queues, and no queue it lacks.
		veth.NumTxQueues, veth.NumRxQueues = q+1, q+1
		veth.PeerNumTxQueues, veth.PeerNumRxQueues = uint32(q), uint32(q)
	}
	if err := sw.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding veth %s (peer %s in %s): %w", h.BridgePort, h.Iface, h.NSName, err)
	}
	port, err := sw.LinkByName(h.BridgePort)
	if err != nil {
		return fmt.Errorf("finding bridge port %s: %w", h.BridgePort, err)
	}
	if err := sw.LinkSetMaster(port, br); err != nil {
		return fmt.Errorf("adding %s to %s: %w", h.BridgePort, bridgeName, err)
	}
	if err := sw.LinkSetUp(port); err != nil {
		return fmt.Errorf("setting %s up: %w", h.BridgePort, err)
	}
	return configurePort(nh, h.Port, lanBits4, lanBits6)
}

// addClientLink joins router eth1 and client eth0 with a veth pair made in
// the router's namespace.
func (l *Lab) addClientLink(router, client *netlink.Handle) error {
	up, c := l.RouterUplink, l.Client
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: up.Iface, MTU: l.MTU, HardwareAddr: up.MAC, Alias: l.Name + "/router-uplink"},
		PeerName:         c.Iface,
		PeerHardwareAddr: c.MAC,
		PeerNamespace:    netlink.NsFd(c.NS),
		PeerMTU:          uint32(l.MTU),
	}
	if err := router.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding client link %s (peer %s in %s): %w", up.Iface, c.Iface, c.NSName, err)
	}
	if err := configurePort(router, up, lanBits4, lanBits6); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := configurePort(client, c.Port, lanBits4, lanBits6); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// configurePort sets p's MAC, addresses (IPv6 with nodad) and raises it.
func configurePort(nh *netlink.Handle, p Port, bits4, bits6 int) error {
	link, err := nh.LinkByName(p.Iface)
	if err != nil {
		return fmt.Errorf("finding %s: %w", p.Iface, err)
	}
	if err := nh.LinkSetHardwareAddr(link, p.MAC); err != nil {
		return fmt.Errorf("setting %s MAC %s: %w", p.Iface, p.MAC, err)
	}
	if err := addAddr(nh, link, netip.PrefixFrom(p.IPv4, bits4)); err != nil {
		return err
	}
	if err := addAddr(nh, link, netip.PrefixFrom(p.IPv6, bits6)); err != nil {
		return err
	}
	if err := nh.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up: %w", p.Iface, err)
	}
	return nil
}

// addAddr adds p to link; IPv6 addresses get nodad so they are usable at once.
func addAddr(nh *netlink.Handle, link netlink.Link, p netip.Prefix) error {
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := nh.AddrAdd(link, a); err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

func addDefaultRoutes(nh *netlink.Handle, h *Host, gw4, gw6 netip.Addr) error {
	link, err := nh.LinkByName(h.Iface)
	if err != nil {
		return fmt.Errorf("finding %s: %w", h.Iface, err)
	}
	for _, gw := range []netip.Addr{gw4, gw6} {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()}
		if gw.Is6() {
			r.Family = netlink.FAMILY_V6
		} else {
			r.Family = netlink.FAMILY_V4
		}
		if err := nh.RouteAdd(r); err != nil {
			return fmt.Errorf("adding default route via %s dev %s: %w", gw, h.Iface, err)
		}
	}
	return nil
}

func (l *Lab) addVIPsOnLo(nh *netlink.Handle) error {
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo: %w", err)
	}
	if err := addAddr(nh, lo, netip.PrefixFrom(l.VIP, 32)); err != nil {
		return err
	}
	return addAddr(nh, lo, netip.PrefixFrom(l.VIP6, 128))
}
