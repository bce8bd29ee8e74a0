package config

import "net/netip"

// String names a service the way ipvsadm -Ln lists it, lower case:
// "tcp 198.18.0.100:80", "udp [2001:db8::1]:53".
func (s *Service) String() string {
	return s.Protocol.String() + " " + netip.AddrPortFrom(s.VIP, s.Port).String()
}
