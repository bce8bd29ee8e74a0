package director

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// blackholeVIPs installs a blackhole route for each VIP, so that a kernel
// that forwards (a container host) drops its own copy of every VIP frame
// instead of routing a duplicate to the real servers; drlb's copy, read
// from the raw socket, is unaffected. The returned function removes the
// routes; everything is logged, since this changes the host's routing.
func blackholeVIPs(vips []netip.Addr, log *slog.Logger) (remove func(), err error) {
	var added []*netlink.Route
	remove = func() {
		for _, r := range added {
			if err := netlink.RouteDel(r); err != nil {
				log.Error("removing blackhole route: remove it by hand", "route", r.Dst.String(), "err", err,
					"fix", "ip route del blackhole "+r.Dst.String())
				continue
			}
			log.Info("blackhole route removed", "route", r.Dst.String())
		}
	}
	for _, vip := range vips {
		bits := 32
		if vip.Is6() {
			bits = 128
		}
		r := &netlink.Route{
			Dst:  &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(bits, bits)},
			Type: unix.RTN_BLACKHOLE,
		}
		if err := netlink.RouteAdd(r); err != nil {
			// A blackhole left by a drlb that was killed is taken over;
			// any other route for the VIP is the operator's: refuse
			// rather than replace it (and delete it on exit).
			if !errors.Is(err, unix.EEXIST) || !isBlackhole(r) {
				remove()
				return nil, fmt.Errorf("director: blackhole route for %s: %w (is there a route for the VIP already? ip route show %s)", vip, err, r.Dst)
			}
		}
		added = append(added, r)
		log.Warn("kernel forwarding is on: installed a blackhole route so the kernel drops its copy of VIP frames; removed on exit",
			"route", "blackhole "+r.Dst.String())
	}
	return remove, nil
}

// isBlackhole reports whether the main table's route for r.Dst is a
// blackhole route.
func isBlackhole(r *netlink.Route) bool {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Dst: r.Dst}, netlink.RT_FILTER_DST)
	if err != nil {
		return false
	}
	for _, x := range routes {
		if x.Type == unix.RTN_BLACKHOLE {
			return true
		}
	}
	return false
}
