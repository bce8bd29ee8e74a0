package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkSystem is the live host: netlink for addresses, files for sysctls.
type netlinkSystem struct {
	ProcSys
	h *netlink.Handle
}

// NewSystem returns the live System: addresses through h (nil: a netlink
// socket per call in the calling thread's network namespace) and sysctls
// as files under procSys ("" means /proc/sys). /proc/sys/net shows the
// network namespace of the thread that opens it.
func NewSystem(procSys string, h *netlink.Handle) System {
	if procSys == "" {
		procSys = "/proc/sys"
	}
	if h == nil {
		h = &netlink.Handle{}
	}
	return &netlinkSystem{ProcSys: ProcSys(procSys), h: h}
}

func (s *netlinkSystem) LinkExists(dev string) (bool, error) {
	_, err := s.h.LinkByName(dev)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up interface %s: %w", dev, err)
	}
	return true, nil
}

func (s *netlinkSystem) link(dev string) (netlink.Link, error) {
	l, err := s.h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("looking up interface %s: %w", dev, err)
	}
	return l, nil
}

func (s *netlinkSystem) HasAddr(dev string, p netip.Prefix) (bool, error) {
	l, err := s.link(dev)
	if err != nil {
		return false, err
	}
	fam := netlink.FAMILY_V4
	if p.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := s.h.AddrList(l, fam)
	if err != nil {
		return false, fmt.Errorf("listing addresses of %s: %w", dev, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ok && ip.Unmap() == p.Addr() && ones == p.Bits() {
			return true, nil
		}
	}
	return false, nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func (s *netlinkSystem) AddAddr(dev string, p netip.Prefix) error {
	l, err := s.link(dev)
	if err != nil {
		return err
	}
	return s.h.AddrAdd(l, nlAddr(p))
}

func (s *netlinkSystem) DelAddr(dev string, p netip.Prefix) error {
	l, err := s.link(dev)
	if err != nil {
		return err
	}
	return s.h.AddrDel(l, nlAddr(p))
}
