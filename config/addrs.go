package config

import "net/netip"

// VIPs lists the distinct VIPs of c, in config order: what the director
// answers ARP/NDP for and announces.
func (c *Config) VIPs() []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range c.Services {
		if !seen[s.VIP] {
			seen[s.VIP] = true
			out = append(out, s.VIP)
		}
	}
	return out
}

// RealServerAddrs lists the distinct real server addresses of c, sorry
// servers included, in config order: what the director resolves (neighbor
// resolution is per address, whatever services share a server).
func (c *Config) RealServerAddrs() []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, s := range c.Services {
		for _, r := range s.RealServers {
			add(r.Address)
		}
		if s.SorryServer != nil {
			add(s.SorryServer.Address)
		}
	}
	return out
}
