package link

import "net/netip"

// XDPMode is implemented by the AF_XDP port (OpenXDP): how its program is
// attached, "driver" (native XDP) or "generic" (the kernel's SKB path, for
// drivers without native XDP).
type XDPMode interface{ XDPMode() string }

// VIPSetter is a Port whose kernel-side VIP set can change while it runs
// (the AF_XDP port's BPF map): a reload that adds or removes VIPs calls it.
type VIPSetter interface {
	SetVIPs(vips []netip.Addr) error
}
