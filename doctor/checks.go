package doctor

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/drlb/drlb/realserver"
)

// IDForwarding marks the forwarding checks: drlb run -blackhole-vip
// handles a failure of theirs by other means.
const IDForwarding = "forwarding"

// VIPsOffHost checks that no interface of the host, whose addresses are
// addrs (Host.Addrs), holds any of vips: a director's kernel that owns a
// VIP answers its traffic itself (TCP resets, ICMP) and its ARP. drlb run
// refuses to start on such a host, and a reload or a ctl change to add
// such a VIP.
func VIPsOffHost(addrs []IfAddr, vips []netip.Addr) Report {
	var r Report
	for _, vip := range vips {
		// Every place the VIP is: deleting only the first one listed
		// leaves the host owning it.
		var where, dels []string
		for _, a := range addrs {
			if a.Addr.Addr() == vip.Unmap() {
				where = append(where, a.Iface)
				dels = append(dels, fmt.Sprintf("ip addr del %s dev %s", a.Addr, a.Iface))
			}
		}
		if len(where) > 0 {
			r.add("VIP "+vip.String()+" not on the director", Fail,
				fmt.Sprintf("configured on %s: the kernel would answer VIP traffic itself (TCP resets, ICMP) and fight drlb over ARP", strings.Join(where, ", ")),
				strings.Join(dels, "; "))
		} else {
			r.add("VIP "+vip.String()+" not on the director", Pass, "not configured; drlb takes its traffic (answering ARP/NDP for it, or routed to it with bgp:)", "")
		}
	}
	return r
}

// Director checks a host that will run drlb as the director on iface for
// vips.
//
// reals, if given, are the real servers: each must be on a subnet of iface
// (the same L2 segment), because DR only rewrites MAC addresses.
func Director(h Host, iface string, vips []netip.Addr, reals ...netip.Addr) Report {
	var r Report
	li, ok := checkLink(&r, h, iface)
	if !ok {
		return r
	}
	addrs, err := h.Addrs()
	if err != nil {
		r.add("addresses readable", Fail, err.Error(), "")
		return r
	}
	r = append(r, VIPsOffHost(addrs, vips)...)
	has4, has6 := families(vips)
	if has4 {
		checkForwarding(&r, h, "ipv4", iface)
	}
	if has6 {
		checkForwarding(&r, h, "ipv6", iface)
	}
	if has4 {
		for _, scope := range []string{"all", iface} {
			key := "net/ipv4/conf/" + scope + "/send_redirects"
			if v, err := h.Sysctl(key); err == nil && v != "0" {
				r.add("send_redirects off ("+scope+")", Warn,
					"on: a director that ever forwards would tell clients to bypass it",
					"sysctl -w "+realserver.SysctlName(key)+"=0")
			} else if err == nil {
				r.add("send_redirects off ("+scope+")", Pass, "0", "")
			}
		}
		var own []string
		for _, a := range addrs {
			if a.Iface == iface && a.Addr.Addr().Is4() {
				own = append(own, a.Addr.String())
			}
		}
		if len(own) == 0 {
			r.add("director address on "+iface, Warn, "no IPv4 address: real servers are resolved with ARP probes from 0.0.0.0", "ip addr add ADDR/LEN dev "+iface)
		} else {
			r.add("director address on "+iface, Pass, strings.Join(own, ", "), "")
		}
	}
	checkOnLink(&r, addrs, iface, reals)
	r.add("interface MTU", Pass, fmt.Sprintf("%d (real servers' LAN MTU must be the same)", li.MTU), "")
	if q := li.RxQueues; q > 1 {
		// Not a trap: what -io afxdp does here, so that its share of
		// AF_PACKET frames surprises nobody.
		r.add("receive queues", Pass, fmt.Sprintf("%d in use: drlb run -io afxdp runs a worker per queue (at most -workers; one with -kernel-flows or -kernel-syns), each taking its own clients' frames off its queue through AF_XDP, about 1 in %d frames; the others reach their worker through AF_PACKET (-io auto picks AF_PACKET here)", q, q), "")
	}
	checkOffloads(&r, h, iface)
	return r
}

// RealServer checks a host that serves vips behind DR directors, on its
// LAN interface iface. It needs a default route (DR replies go straight
// to the client, through the router: with BGP every client is off the
// LAN), and its default gateway must be none of directors (the
// directors' addresses, when given): the router, never a director.
func RealServer(h Host, iface string, vips []netip.Addr, directors ...netip.Addr) Report {
	var r Report
	if _, ok := checkLink(&r, h, iface); !ok {
		return r
	}
	addrs, err := h.Addrs()
	if err != nil {
		r.add("addresses readable", Fail, err.Error(), "")
		return r
	}
	for _, vip := range vips {
		bits := 32
		if vip.Is6() {
			bits = 128
		}
		// Every place the VIP is: on lo as a host route, never on the
		// LAN interface (which answers ARP for it whatever arp_ignore);
		// on another interface (a dummy) it works but is not what
		// drlb realserver does, and anything but a host route there
		// claims a whole prefix.
		var onLo, onLAN, other, wide *IfAddr
		for i := range addrs {
			a := &addrs[i]
			switch {
			case a.Addr.Addr() != vip.Unmap():
			case a.Iface == "lo":
				onLo = cmp.Or(onLo, a)
			case a.Iface == iface:
				onLAN = cmp.Or(onLAN, a)
			default:
				other = cmp.Or(other, a)
			}
			// Any entry with a prefix claims the whole prefix, even beside
			// a host route to the same address (drlb realserver up adds
			// the /32 next to an old VIP/24): only looking at the first
			// one listed would pass such a host.
			if a.Addr.Addr() == vip.Unmap() && a.Iface != iface && a.Addr.Bits() != bits {
				wide = cmp.Or(wide, a)
			}
		}
		name := "VIP " + vip.String() + " on lo"
		moveToLo := func(a *IfAddr) string {
			fix := fmt.Sprintf("ip addr del %s dev %s", a.Addr, a.Iface)
			if onLo == nil {
				fix += fmt.Sprintf("; ip addr add %s/%d dev lo", vip, bits)
			}
			return fix
		}
		switch {
		case onLAN != nil:
			r.add(name, Fail, "configured on "+iface+": it would answer ARP for the VIP and steal traffic from the director", moveToLo(onLAN))
		case onLo == nil && other == nil:
			r.add(name, Fail, "not configured: the real server would drop the director's frames",
				fmt.Sprintf("ip addr add %s/%d dev lo   (or: drlb realserver up --vip %s)", vip, bits, vip))
		case wide != nil:
			a := wide
			fix := fmt.Sprintf("ip addr del %s dev %s", a.Addr, a.Iface)
			// Adding the host route when it is there already would fail (File exists).
			if !slices.Contains(addrs, IfAddr{Iface: "lo", Addr: netip.PrefixFrom(vip.Unmap(), bits)}) {
				fix += fmt.Sprintf("; ip addr add %s/%d dev lo", vip, bits)
			}
			r.add(name, Fail, fmt.Sprintf("configured as %s on %s: the whole prefix becomes this host's, so it would answer for, and stop reaching, every address in it (the router, the director, the clients on the LAN)", a.Addr, a.Iface), fix)
		case other != nil:
			r.add(name, Warn, fmt.Sprintf("configured on %s: it works (a local address, and that interface answers ARP only on its own link with arp_ignore 1 or 2), but drlb realserver and doctor expect it on lo", other.Iface), moveToLo(other))
		default:
			r.add(name, Pass, onLo.Addr.String(), "")
		}
	}
	if i := slices.IndexFunc(vips, func(v netip.Addr) bool { return v.Unmap().Is4() }); i >= 0 {
		v4 := vips[i].Unmap()
		checkARPSysctl(&r, h, "arp_ignore", iface, v4, []int{1, 2}, "replying to ARP for the VIP (on lo) would steal the VIP from the director (ARP flux)")
		checkARPSysctl(&r, h, "arp_announce", iface, v4, []int{2}, "ARP requests sourced from the VIP would poison neighbours' caches")
	}
	checkGateway(&r, h, vips, directors)
	return r
}

// checkGateway checks a real server's default route: there must be one
// (replies to clients off the LAN leave through it; with BGP every client
// is off the LAN), and it must lead to the router, none of the directors
// (DR replies never pass a director).
// A default route of the other family does not count: an IPv4 VIP's
// replies find no route through an IPv6 one.
func checkGateway(r *Report, h Host, vips, directors []netip.Addr) {
	var ds []netip.Addr
	for _, d := range directors {
		if d.IsValid() {
			ds = append(ds, d)
		}
	}
	gws, err := h.DefaultGateways()
	name := "default gateway the router"
	if len(ds) > 0 {
		name = "default gateway the router, not a director"
	}
	var bad []netip.Addr
	for _, d := range ds {
		if containsAddr(gws, d) {
			bad = append(bad, d.Unmap())
		}
	}
	has4, has6 := families(vips)
	var missing, fixes []string
	if has4 && !slices.ContainsFunc(gws, netip.Addr.Is4) {
		missing, fixes = append(missing, "IPv4"), append(fixes, "ip route replace default via ROUTER")
	}
	if has6 && !slices.ContainsFunc(gws, netip.Addr.Is6) {
		missing, fixes = append(missing, "IPv6"), append(fixes, "ip -6 route replace default via ROUTER")
	}
	switch {
	case err != nil && len(ds) > 0:
		r.add(name, Fail, err.Error(), "")
	case err != nil:
		r.add(name, Warn, err.Error(), "")
	case len(bad) > 0:
		r.add(name, Fail,
			fmt.Sprintf("the default route points at director %v, but DR replies must go straight to the client via the router", bad),
			"ip route replace default via ROUTER")
	case len(missing) > 0:
		r.add(name, Warn,
			"no default route for "+strings.Join(missing, " nor ")+": replies reach clients on this LAN only (with bgp: every client is off the LAN)",
			strings.Join(fixes, "; "))
	case len(ds) == 0:
		r.add(name, Pass, fmt.Sprint(gws)+" (give -director ADDR to check it is not a director)", "")
	default:
		r.add(name, Pass, fmt.Sprint(gws), "")
	}
}

// BGP checks a director whose VIPs are routed to it by BGP (a config with
// bgp:), on top of Director: each peer must be reachable from iface
// (answering ping or, failing that, a TCP connection to its BGP port
// within timeout), and on the LAN of iface, since the next hop announced
// is the director's own address there; and each VIP must be off the LAN
// subnets, or hosts of the LAN would ARP for it, and nothing answers ARP
// for a routed VIP.
func BGP(h Host, iface string, vips []netip.Addr, peers []netip.AddrPort, timeout time.Duration) Report {
	var r Report
	addrs, err := h.Addrs()
	if err != nil {
		r.add("addresses readable", Fail, err.Error(), "")
		return r
	}
	for _, p := range peers {
		a := p.Addr().Unmap()
		name := "BGP peer " + a.String() + " on the LAN of " + iface
		if subnet, ok := lanSubnet(addrs, iface, a); ok {
			r.add(name, Pass, "inside "+subnet.String(), "")
		} else {
			r.add(name, Warn,
				"not inside any subnet of "+iface+": the next hop drlb announces is its address on "+iface+", which the router must reach on this LAN (a multihop session to a route reflector is fine if the routers that forward are on it)",
				"peer with the router's address on the LAN of "+iface)
		}
		name = "BGP peer " + a.String() + " reachable"
		if ok, err := h.Ping(a, 64, timeout); err == nil && ok {
			r.add(name, Pass, "answers ping", "")
			continue
		}
		err := h.Connect(p, timeout)
		switch {
		case err == nil:
			r.add(name, Pass, fmt.Sprintf("no answer to ping, but accepts TCP on its BGP port %d", p.Port()), "")
		case errors.Is(err, syscall.ECONNREFUSED):
			r.add(name, Fail, fmt.Sprintf("refuses TCP on port %d: no BGP there, or this director is not its neighbor", p.Port()),
				fmt.Sprintf("on the router: a BGP neighbor for this director's address on %s, listening on port %d (the director connects, it does not listen)", iface, p.Port()))
		default:
			r.add(name, Fail, fmt.Sprintf("no answer to ping nor to TCP on port %d within %v: %v", p.Port(), timeout, err),
				fmt.Sprintf("check the router is up and on the LAN of %s (ip neigh show %s), and that no firewall drops TCP port %d", iface, a, p.Port()))
		}
	}
	for _, vip := range vips {
		name := "VIP " + vip.String() + " off the LAN (routed by BGP)"
		if subnet, ok := lanSubnet(addrs, iface, vip); ok {
			r.add(name, Warn,
				"inside "+subnet.String()+" of "+iface+": hosts on this LAN (and routers that prefer a connected route) ARP for it instead of routing it, and with bgp: nothing answers ARP for a VIP",
				"take the VIPs from a block outside the LAN subnets (a /32 or /128 routed only by BGP), or drop bgp: to serve them on the LAN by ARP/NDP")
			continue
		}
		r.add(name, Pass, "outside the subnets of "+iface+": reached through the router's BGP routes", "")
	}
	return r
}

// lanSubnet returns the subnet of iface (not a host address) holding a.
func lanSubnet(addrs []IfAddr, iface string, a netip.Addr) (netip.Prefix, bool) {
	for _, x := range addrs {
		if x.Iface == iface && x.Addr.Bits() < x.Addr.Addr().BitLen() && x.Addr.Masked().Contains(a.Unmap()) {
			return x.Addr.Masked(), true
		}
	}
	return netip.Prefix{}, false
}

func checkLink(r *Report, h Host, iface string) (LinkInfo, bool) {
	li, err := h.Link(iface)
	switch {
	case errors.Is(err, ErrNoInterface):
		r.add("interface "+iface, Fail, "does not exist", "ip link show   (and pick the LAN interface)")
		return li, false
	case err != nil:
		r.add("interface "+iface, Fail, err.Error(), "")
		return li, false
	case !li.Up:
		r.add("interface "+iface, Fail, "down", "ip link set "+iface+" up")
		return li, false
	case li.NoCarrier:
		// Admin up is not enough: without carrier no frame arrives or
		// leaves, yet this said "up" (PASS). A warning, not a failure: a
		// link that comes up late at boot must not keep drlb run from
		// starting, and it follows the link once it is up.
		r.add("interface "+iface, Warn, fmt.Sprintf("up, MAC %s, but NO CARRIER: no frame arrives or leaves (cable, switch port, or a veth's peer down)", li.MAC),
			"ip link show "+iface+"   (and check the cable and the switch port)")
		return li, true
	}
	r.add("interface "+iface, Pass, fmt.Sprintf("up, MAC %s", li.MAC), "")
	return li, true
}

// forwardingKeys are the sysctls that make the kernel forward what
// arrives on iface: for IPv4 the interface's own forwarding (ip_forward
// sets every interface's); for IPv6 the "all" value, which is what
// ip6_forward reads (an interface's forwarding only makes it act as a
// router, not forward), and the interface's force_forwarding (Linux 6.17
// and later; absent before).
func forwardingKeys(fam, iface string) []string {
	if fam == "ipv6" {
		return []string{"net/ipv6/conf/all/forwarding", "net/ipv6/conf/" + iface + "/force_forwarding"}
	}
	return []string{"net/ipv4/conf/" + iface + "/forwarding"}
}

func checkForwarding(r *Report, h Host, fam, iface string) {
	name := fam + " forwarding off on " + iface
	var on []string
	var readErr error
	for i, key := range forwardingKeys(fam, iface) {
		v, err := h.Sysctl(key)
		switch {
		case err != nil && i == 0:
			readErr = err
		case err == nil && v != "0":
			on = append(on, key)
		}
	}
	switch {
	case readErr != nil:
		r.add(name, Warn, readErr.Error(), "")
	case len(on) > 0:
		var sets []string
		for _, key := range on {
			sets = append(sets, realserver.SysctlName(key)+"=0")
		}
		fix := "sysctl -w " + strings.Join(sets, " ")
		if fam == "ipv4" {
			fix = "sysctl -w net.ipv4.ip_forward=0   (or at least " + strings.Join(sets, " ") + ")"
		}
		fix += "; or, on a host that must forward, drlb run -blackhole-vip"
		// With -io afxdp the kernel never sees the untagged VIP frames XDP
		// redirects; the program passes others (tagged ones, those over
		// 1792 bytes, those of another queue's worker, all once detached),
		// whose copy drlb's tc drop takes where it is attached.
		fix += " (drlb run -io afxdp keeps the VIP frames it redirects from the kernel, but not those its XDP program passes: 802.1Q-tagged ones, frames over 1792 bytes, with several receive queues those of another queue's worker, all of them if the program is detached; drlb drops the kernel's copy of untagged ones at tc ingress where the kernel has tcx)"
		r.add(name, Fail, "on ("+realserver.SysctlName(on[0])+"): the kernel would route its own copy of every VIP frame to the real servers, so they would get each packet twice", fix)
		(*r)[len(*r)-1].ID = IDForwarding
	default:
		r.add(name, Pass, "0", "")
	}
}

// checkARPSysctl checks net.ipv4.conf.{all,iface}.key, of which the
// kernel uses the larger: it must be one of ok. arp_ignore 3 still
// answers for the VIP on lo (a global address), 4 to 7 answer everything
// as 0 does, 8 answers nothing (not even for the server's own address);
// an arp_announce above 2 acts as 0.
//
// Both values are needed: the one not read could be the larger.
func checkARPSysctl(r *Report, h Host, key, iface string, vip netip.Addr, ok []int, why string) {
	best := -1
	var unread []string
	for _, scope := range []string{"all", iface} {
		path := "net/ipv4/conf/" + scope + "/" + key
		var n int
		v, err := h.Sysctl(path)
		if err == nil {
			_, err = fmt.Sscan(v, &n)
		}
		if err != nil {
			unread = append(unread, realserver.SysctlName(path))
			continue
		}
		best = max(best, n)
	}
	want := ok[0]
	var names []string
	for _, n := range ok {
		names = append(names, fmt.Sprint(n))
	}
	name := fmt.Sprintf("%s %s", key, strings.Join(names, " or "))
	// dotted: a VLAN interface's dot must reach sysctl(8) as '/'.
	// drlb realserver up needs --vip.
	fix := fmt.Sprintf("sysctl -w net.ipv4.conf.all.%s=%d %s=%d   (or: drlb realserver up --vip %s --iface %s)", key, want, realserver.SysctlName("net/ipv4/conf/"+iface+"/"+key), want, vip, iface)
	switch {
	case len(unread) > 0:
		r.add(name, Fail, "unreadable ("+strings.Join(unread, ", ")+"): "+why, fix)
	case slices.Contains(ok, best):
		r.add(name, Pass, fmt.Sprint(best), "")
	default:
		r.add(name, Fail, fmt.Sprintf("%d (the larger of all and %s): %s", best, iface, why), fix)
	}
}

func checkOffloads(r *Report, h Host, iface string) {
	off, err := h.Offloads(iface)
	if err != nil || len(off) == 0 {
		return
	}
	names := make([]string, 0, len(off))
	for n := range off {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		st := "off"
		if off[n] {
			st = "on"
		}
		parts = append(parts, n+" "+st)
	}
	r.add("offloads", Pass, strings.Join(parts, ", ")+
		" (drlb reads frames with their virtio-net header: merged super-frames and partial checksums are segmented and completed by the kernel on the way out; nothing to change)", "")
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a.Unmap() {
			return true
		}
	}
	return false
}

func families(vips []netip.Addr) (has4, has6 bool) {
	for _, v := range vips {
		if v.Unmap().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	return
}

// checkOnLink checks that each real server is inside a prefix configured on
// iface: DR reaches real servers by MAC, so they must share the segment.
func checkOnLink(r *Report, addrs []IfAddr, iface string, reals []netip.Addr) {
	for _, rs := range reals {
		onLink := false
		for _, a := range addrs {
			if a.Iface == iface && a.Addr.Masked().Contains(rs.Unmap()) && a.Addr.Bits() < a.Addr.Addr().BitLen() {
				onLink = true
			}
		}
		name := "real server " + rs.String() + " on the LAN of " + iface
		if onLink {
			r.add(name, Pass, "inside a subnet of "+iface, "")
			continue
		}
		r.add(name, Warn,
			"not inside any subnet configured on "+iface+": DR only rewrites MACs, so the real server must be on this L2 segment (it will be found by ARP if it is)",
			"put the real server on the director's LAN, or add its subnet to "+iface)
	}
}

// Reachability pings each real server from the director, first with a
// small packet (is it on this LAN and up?), then with a packet of the
// interface's full MTU and don't-fragment set: a real server that answers
// the first but not the second has a smaller MTU, and full-size frames the
// director forwards to it would be lost without a trace.
func Reachability(h Host, iface string, reals []netip.Addr, timeout time.Duration) Report {
	var r Report
	li, err := h.Link(iface)
	if err != nil {
		r.add("interface "+iface, Fail, err.Error(), "")
		return r
	}
	for _, rs := range reals {
		name := "real server " + rs.String() + " reachable"
		ok, err := h.Ping(rs, 64, timeout)
		switch {
		case err != nil:
			r.add(name, Warn, "cannot ping: "+err.Error(), "")
			continue
		case !ok:
			r.add(name, Fail, "no answer to ping: down, not on the director's LAN segment, or ICMP filtered",
				fmt.Sprintf("check the real server is up and on the same L2 segment as %s (ip neigh show %s)", iface, rs))
			continue
		}
		r.add(name, Pass, "answers ping", "")
		name = fmt.Sprintf("real server %s MTU %d", rs, li.MTU)
		ok, err = h.Ping(rs, li.MTU, timeout)
		switch {
		case err != nil:
			r.add(name, Warn, "cannot send a full-size ping: "+err.Error(), "")
		case !ok:
			r.add(name, Fail, fmt.Sprintf("answers small pings but not %d-byte ones: its MTU is smaller than the director's, so full-size frames forwarded to it are lost", li.MTU),
				fmt.Sprintf("ip link set dev IFACE mtu %d   (on the real server; one MTU on the whole segment)", li.MTU))
		default:
			r.add(name, Pass, "full-size frames get through", "")
		}
	}
	return r
}
