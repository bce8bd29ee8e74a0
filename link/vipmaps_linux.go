package link

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// newVIPMaps makes the two VIP sets the kernel-side programs match (the
// XDP program's and the tc drop's): hash maps keyed by the IPv4 address's
// 4 wire bytes and the IPv6 address's 16, value unused.
func newVIPMaps() (vip4, vip6 *ebpf.Map, err error) {
	vip4, err = ebpf.NewMap(&ebpf.MapSpec{Name: "drlb_vip4", Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: MaxXDPVIPs})
	if err != nil {
		return nil, nil, fmt.Errorf("map drlb_vip4: %w", err)
	}
	vip6, err = ebpf.NewMap(&ebpf.MapSpec{Name: "drlb_vip6", Type: ebpf.Hash, KeySize: 16, ValueSize: 1, MaxEntries: MaxXDPVIPs})
	if err != nil {
		_ = vip4.Close()
		return nil, nil, fmt.Errorf("map drlb_vip6: %w", err)
	}
	return vip4, vip6, nil
}

// setVIPMaps makes vip4 and vip6 hold exactly vips: the removal of those
// no longer configured first, then the new ones. New first filled a map
// whose old and new sets were together larger than it (600 VIPs replaced
// by 600 others, in a map of 1024) before anything was removed: the add
// failed, the map kept old and part of the new set, and every later
// change failed the same way. A VIP in both sets is never touched, so it
// has no gap.
func setVIPMaps(vip4, vip6 *ebpf.Map, vips []netip.Addr) error {
	want4, want6 := map[[4]byte]bool{}, map[[16]byte]bool{}
	for _, v := range vips {
		if v.Unmap().Is4() {
			want4[v.Unmap().As4()] = true
		} else {
			want6[v.As16()] = true
		}
	}
	if len(want4) > MaxXDPVIPs || len(want6) > MaxXDPVIPs {
		return fmt.Errorf("more than %d VIPs of one family", MaxXDPVIPs)
	}
	// Collected first: deleting while iterating restarts the walk.
	if err := errors.Join(pruneVIPMap(vip4, want4), pruneVIPMap(vip6, want6)); err != nil {
		return err
	}
	one := uint8(1)
	for k := range want4 {
		if err := vip4.Put(k, one); err != nil {
			return fmt.Errorf("VIP map: %w", err)
		}
	}
	for k := range want6 {
		if err := vip6.Put(k, one); err != nil {
			return fmt.Errorf("VIP map: %w", err)
		}
	}
	return nil
}

// pruneVIPMap deletes from m the keys want does not hold.
func pruneVIPMap[K comparable](m *ebpf.Map, want map[K]bool) error {
	return pruneMap[K, uint8](m, "VIP map", func(k K) bool { return want[k] })
}
