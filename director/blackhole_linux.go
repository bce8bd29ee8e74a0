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

// blackholes are the blackhole routes drlb installed for its VIPs, so that
// a kernel that forwards (a container host) drops its own copy of every VIP
// frame instead of routing a duplicate to the real servers; drlb's copy,
// read from the raw socket, is unaffected. Everything is logged, since
// this changes the host's routing. A reload adds and removes routes as
// VIPs come and go: a new VIP's before the swap (a reload whose route
// the kernel refuses is refused), a removed one's after.
type blackholes struct {
	log    *slog.Logger
	routes map[netip.Addr]*netlink.Route
	// adopted are the VIPs whose route drlb found in place (left by a
	// drlb that was killed) rather than added.
	adopted map[netip.Addr]bool
}

// blackholeVIPs installs a blackhole route for each VIP; on error it
// removes those it added and returns the error.
func blackholeVIPs(vips []netip.Addr, log *slog.Logger) (*blackholes, error) {
	b := &blackholes{log: log, routes: map[netip.Addr]*netlink.Route{}, adopted: map[netip.Addr]bool{}}
	if _, err := b.add(vips); err != nil {
		b.removeAll()
		return nil, err
	}
	return b, nil
}

// add installs routes for vips (those it has already are skipped),
// stopping at the first failure. took are the VIPs whose routes it took
// on, for giveBack to undo, failure or not.
func (b *blackholes) add(vips []netip.Addr) (took []netip.Addr, err error) {
	for _, vip := range vips {
		if _, ok := b.routes[vip]; ok {
			continue
		}
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
				return took, fmt.Errorf("director: blackhole route for %s: %w (is there a route for the VIP already? ip route show %s)", vip, err, r.Dst)
			}
			b.adopted[vip] = true
		}
		b.routes[vip] = r
		took = append(took, vip)
		b.log.Warn("kernel forwarding is on: installed a blackhole route so the kernel drops its copy of VIP frames; removed on exit",
			"route", "blackhole "+r.Dst.String())
	}
	return took, nil
}

// giveBack undoes add's taking of vips (a refused reload): the routes it
// added are removed, those it found in place are left there and no
// longer drlb's.
func (b *blackholes) giveBack(vips []netip.Addr) error {
	var added []netip.Addr
	for _, vip := range vips {
		if b.adopted[vip] {
			delete(b.adopted, vip)
			delete(b.routes, vip)
			continue
		}
		added = append(added, vip)
	}
	return b.remove(added)
}

// remove deletes the routes of vips; a route the kernel keeps is logged,
// with the command that removes it, and returned among the errors.
func (b *blackholes) remove(vips []netip.Addr) error {
	var errs []error
	for _, vip := range vips {
		r, ok := b.routes[vip]
		if !ok {
			continue
		}
		delete(b.routes, vip)
		delete(b.adopted, vip)
		if err := netlink.RouteDel(r); err != nil {
			b.log.Error("removing blackhole route: remove it by hand", "route", r.Dst.String(), "err", err,
				"fix", "ip route del blackhole "+r.Dst.String())
			errs = append(errs, fmt.Errorf("director: removing blackhole route %s: %w (ip route del blackhole %s)", r.Dst, err, r.Dst))
			continue
		}
		b.log.Info("blackhole route removed", "route", r.Dst.String())
	}
	return errors.Join(errs...)
}

// removeAll deletes every route drlb installed.
func (b *blackholes) removeAll() {
	vips := make([]netip.Addr, 0, len(b.routes))
	for vip := range b.routes {
		vips = append(vips, vip)
	}
	_ = b.remove(vips) // logged
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
