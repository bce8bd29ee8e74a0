package director

import (
	"context"
	"errors"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// With ha:, a director whose link goes down (a cable, the switch port,
// "ip link set eth0 down") can neither hear the other directors' adverts
// nor be heard: it would stay MASTER on its own, and when the link came
// back nothing would make it announce the VIPs again if the other
// director heard its adverts first and yielded without a word (the
// router's ARP entry would stay on the backup). keepalived puts such a
// virtual router in FAULT; so does drlb: watchLink follows the interface
// through netlink link messages and tells the election
// (haRun.linkChanged). With or without ha:, the interface deleted ends the
// director (interfaceDeleted): its sockets are bound to the old index.

// linkRetry is how long watchLink waits before subscribing again after
// the netlink subscription failed or ended.
const linkRetry = time.Second

// linkState is what watchLink last told the election: the election
// starts with the link taken as up, so only a change is reported.
type linkState struct {
	ifindex int32
	ifname  string
	down    bool
	deleted bool // RTM_DELLINK: the interface is gone for good
}

// update reads one link message: for the interface, whether its state
// changed (up: IFF_UP and IFF_RUNNING, keepalived's test) and why.
// Messages of another family (AF_BRIDGE: the port of a bridge, whose
// RTM_DELLINK says it left the bridge) are not about the link.
func (s *linkState) update(msgType uint16, family uint8, index int32, flags uint32) (changed, up bool, reason string) {
	if index != s.ifindex || family != unix.AF_UNSPEC {
		return false, !s.down, ""
	}
	switch {
	case msgType == unix.RTM_DELLINK:
		reason, s.deleted = s.ifname+" deleted", true
	case flags&unix.IFF_UP == 0:
		reason = s.ifname + " set down"
	case flags&unix.IFF_RUNNING == 0:
		reason = s.ifname + ": no carrier"
	default:
		up, reason = true, s.ifname+": link up"
	}
	if up == !s.down {
		return false, up, ""
	}
	s.down = !up
	return true, up, reason
}

// watchLink follows ifname's link until ctx ends or the interface is
// deleted (interfaceDeleted), and tells the HA side when it goes down or
// comes back up. The first message (the state on
// subscribing) counts as a change when the link is down at start.
func (d *Director) watchLink(ctx context.Context, ifname string, ifindex int) {
	st := linkState{ifindex: int32(ifindex), ifname: ifname}
	for ctx.Err() == nil {
		updates := make(chan netlink.LinkUpdate, 64)
		done := make(chan struct{})
		err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{ListExisting: true,
			ErrorCallback: func(err error) {
				select {
				case <-done: // closing the socket ends the read: no news
				default:
					d.log.Warn("link watch", "interface", ifname, "err", err)
				}
			}})
		if err != nil {
			close(done)
			d.log.Warn("cannot watch the link: a link that goes down (ha: FAULT) or an interface deleted is not noticed until the watch works", "interface", ifname, "err", err, "retry_in", linkRetry)
		} else {
			// A deletion while no subscription listened (before the
			// first, or between two: an overflow ends one) sent this
			// one nothing, and ListExisting lists only the links that
			// are: an index no longer found is the interface deleted.
			if _, lerr := netlink.LinkByIndex(ifindex); errors.As(lerr, new(netlink.LinkNotFoundError)) {
				st.deleted = true
				d.interfaceDeleted(ifname)
			} else {
				d.followLink(ctx, &st, updates)
			}
			close(done)
			for range updates {
				// The library's reader blocks on a full channel: let it
				// see the closed socket and close the channel.
			}
			if st.deleted {
				return // the director stops: nothing more to follow
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(linkRetry):
		}
	}
}

// followLink hands link messages to the HA side until ctx ends or the
// subscription does (updates closed).
func (d *Director) followLink(ctx context.Context, st *linkState, updates <-chan netlink.LinkUpdate) {
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			if changed, up, reason := st.update(u.Header.Type, u.Family, u.Index, u.Flags); changed && d.ha != nil {
				d.ha.linkChanged(up, reason)
			}
			if st.deleted {
				d.interfaceDeleted(st.ifname)
				return
			}
		}
	}
}
