package forwarder

import (
	"fmt"
	"net"
	"net/netip"
)

// SetMAC records the MAC address of the real server at addr in every
// service that has it, as a real or a sorry server (neighbor resolution is
// per address). A nil mac
// marks it unknown, which stops new and existing traffic to it. It returns
// ErrUnknownServer when no service has addr.
func (f *Forwarder) SetMAC(addr netip.Addr, mac net.HardwareAddr) error {
	if mac != nil && len(mac) != 6 {
		return fmt.Errorf("forwarder: real server %s: MAC %v is not a 6-byte Ethernet address", addr, mac)
	}
	addr = addr.Unmap()
	found := false
	for _, s := range f.services {
		changed := false
		for _, r := range s.reals {
			if r.addr == addr {
				found = true
				v := packMAC(mac)
				if r.mac.Swap(v)&macKnown != v&macKnown {
					changed = true
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
// configuration's Services and that service's RealServers, as in the
// control methods below.
func (f *Forwarder) realAt(svc, ri int) (*service, *realServer, error) {
	if svc < 0 || svc >= len(f.services) || ri < 0 || ri >= f.services[svc].nreal {
		return nil, nil, fmt.Errorf("%w: service %d real server %d", ErrUnknownServer, svc, ri)
	}
	s := f.services[svc]
	return s, s.reals[ri], nil
}

// SetAvailable marks a real server of a service up or down (health checks
// with on_fail: remove). A server that is down takes no new connections and
// its existing ones expire on their next packet, as IPVS's
// expire_nodest_conn does, so clients fail fast instead of hanging.
func (f *Forwarder) SetAvailable(svc, ri int, up bool) error {
	s, r, err := f.realAt(svc, ri)
	if err != nil {
		return err
	}
	if r.available.Swap(up) != up {
		return s.rebuildScheduler()
	}
	return nil
}

// SetWeight changes a real server's weight. Weight 0 quiesces it: no new
// connections, existing ones continue until they end (draining).
func (f *Forwarder) SetWeight(svc, ri, weight int) error {
	s, r, err := f.realAt(svc, ri)
	if err != nil {
		return err
	}
	if weight < 0 || weight > 65535 {
		return fmt.Errorf("forwarder: weight %d out of range 0..65535", weight)
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
	s, r, err := f.realAt(svc, ri)
	if err != nil {
		return err
	}
	if r.inhibited.Swap(inhibited) != inhibited {
		return s.rebuildScheduler()
	}
	return nil
}
