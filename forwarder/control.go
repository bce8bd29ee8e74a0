package forwarder

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"

	"github.com/drlb/drlb/config"
)

// SetMAC records the MAC address of the real server at addr in every
// service that has it (neighbor resolution is per address). A nil mac
// marks it unknown, which stops new and existing traffic to it. It returns
// ErrUnknownServer when no service has addr.
func (f *Forwarder) SetMAC(addr netip.Addr, mac net.HardwareAddr) error {
	if mac != nil && len(mac) != 6 {
		return fmt.Errorf("forwarder: real server %s: MAC %v is not a 6-byte Ethernet address", addr, mac)
	}
	f.ctl.Lock()
	defer f.ctl.Unlock()
	defer f.noteChange()
	addr = addr.Unmap()
	found := false
	for _, s := range f.cur.Load().services {
		changed := false
		for _, r := range append(s.reals[:len(s.reals):len(s.reals)], s.sorry) {
			if r != nil && r.addr == addr {
				found = true
				v := packMAC(mac)
				old := r.mac.Swap(v)
				if old&macKnown != v&macKnown {
					changed = true
				} else if old != v {
					f.synGen.Add(1) // a new MAC for the SYN tables
				}
			}
		}
		if changed {
			if err := s.rebuildScheduler(); err != nil {
				return err
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: %s", ErrUnknownServer, addr)
	}
	return nil
}

// realAt returns service svc and its real server ri: indexes into the
// running configuration's Services and that service's RealServers, as in
// the control methods below. Callers hold f.ctl.
func (f *Forwarder) realAt(svc, ri int) (*service, *realServer, error) {
	st := f.cur.Load()
	if svc < 0 || svc >= len(st.services) || ri < 0 || ri >= len(st.services[svc].reals) {
		return nil, nil, fmt.Errorf("%w: service %d real server %d", ErrUnknownServer, svc, ri)
	}
	s := st.services[svc]
	return s, s.reals[ri], nil
}

// SetAvailable marks a real server of a service up or down (health checks
// with on_fail: remove). A server that is down takes no new connections and
// its existing ones expire on their next packet, as IPVS's
// expire_nodest_conn does, so clients fail fast instead of hanging.
func (f *Forwarder) SetAvailable(svc, ri int, up bool) error {
	f.ctl.Lock()
	defer f.ctl.Unlock()
	defer f.noteChange()
	s, r, err := f.realAt(svc, ri)
	if err != nil {
		return err
	}
	return setAvailable(s, r, up)
}

func setAvailable(s *service, r *realServer, up bool) error {
	if r.available.Swap(up) != up {
		return s.rebuildScheduler()
	}
	return nil
}

// SetWeight changes a real server's weight. Weight 0 quiesces it: no new
// connections, existing ones continue until they end (draining). Unlike
// Apply it starts no drain timeout; a weight above 0 cancels one.
func (f *Forwarder) SetWeight(svc, ri, weight int) error {
	f.ctl.Lock()
	defer f.ctl.Unlock()
	defer f.noteChange()
	s, r, err := f.realAt(svc, ri)
	if err != nil {
		return err
	}
	if weight < 0 || weight > 65535 {
		return fmt.Errorf("forwarder: weight %d out of range 0..65535", weight)
	}
	if weight > 0 {
		r.drainSince = 0
		r.drainDeadline.Store(0)
	}
	if r.weight.Swap(int32(weight)) != int32(weight) {
		return s.rebuildScheduler()
	}
	return nil
}

// SetInhibited quiesces a real server of a service, or lifts that, without
// touching its configured weight: a health check with on_fail: inhibit
// uses it, so a configuration reload that changes weights cannot bring a
// failing server back by accident.
func (f *Forwarder) SetInhibited(svc, ri int, inhibited bool) error {
	f.ctl.Lock()
	defer f.ctl.Unlock()
	defer f.noteChange()
	s, r, err := f.realAt(svc, ri)
	if err != nil {
		return err
	}
	return setInhibited(s, r, inhibited)
}

func setInhibited(s *service, r *realServer, inhibited bool) error {
	if r.inhibited.Swap(inhibited) != inhibited {
		return s.rebuildScheduler()
	}
	return nil
}

// RealID names a real server of a virtual service by what stays true
// across configurations, where indexes move.
type RealID struct {
	Protocol config.Protocol
	VIP      netip.Addr
	Port     uint16
	Addr     netip.Addr
}

func (id RealID) String() string {
	return fmt.Sprintf("%s %s -> %s", id.Protocol, netip.AddrPortFrom(id.VIP, id.Port), id.Addr)
}

// SetHealth applies a health check's verdict to the real server id names:
// down takes it out (SetAvailable) or, with check.Inhibit, quiesces it
// (SetInhibited); up brings it back. The verdict counts only if the
// running configuration checks that server with exactly check: a verdict
// from a check that a reload replaced or removed, arriving late, is
// ignored with ErrUnknownServer (Apply brought the server up when its
// check's identity changed, and kept its verdict when only its timers or
// inhibit did: the checker that replaces it carries on from that verdict).
func (f *Forwarder) SetHealth(id RealID, check config.Check, up bool) error {
	f.ctl.Lock()
	defer f.ctl.Unlock()
	defer f.noteChange()
	st := f.cur.Load()
	s := st.byKey[svcKey{proto: uint8(id.Protocol), vip: id.VIP.Unmap(), port: id.Port}]
	if s != nil {
		addr := id.Addr.Unmap()
		for i, r := range s.reals {
			if r.addr != addr {
				continue
			}
			if c := s.cfg.RealServers[i].Check; c == nil || !reflect.DeepEqual(*c, check) {
				break
			}
			r.unchecked.Store(false)
			if check.Inhibit {
				return setInhibited(s, r, !up)
			}
			return setAvailable(s, r, up)
		}
	}
	return fmt.Errorf("%w: %s with this check", ErrUnknownServer, id)
}
