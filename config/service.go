package config

import "net/netip"

// String names a service the way ipvsadm -Ln lists it, lower case:
// "tcp 198.18.0.100:80", "udp [2001:db8::1]:53".
func (s *Service) String() string {
	return s.Protocol.String() + " " + netip.AddrPortFrom(s.VIP, s.Port).String()
}

// Flags are the service's scheduler flags as ipvsadm prints them
// (sh-fallback,sh-port), "" when none.
func (s *Service) Flags() string { return formatFlags(s.Scheduler, s.SchedOptions) }

// Netmask is the persistence netmask as ipvsadm prints it (255.255.255.0;
// a prefix length for IPv6), "" when it keeps whole client addresses apart
// (ipvsadm leaves it out then).
func (s *Service) Netmask() string {
	if s.PersistenceBits == fullBits(s.VIP.Is6()) {
		return ""
	}
	return formatNetmask(s.PersistenceBits, s.VIP.Is6())
}
