package config

import (
	"maps"
	"slices"
)

// Clone returns a deep copy of c: nothing in it shares memory with c, so
// either may change without the other seeing it (a running director keeps
// its own copy of what it was given).
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := *c
	out.Lines = maps.Clone(c.Lines)
	out.Services = slices.Clone(c.Services)
	for i := range out.Services {
		s := &out.Services[i]
		s.RealServers = slices.Clone(s.RealServers)
		s.SorryServer = s.SorryServer.Clone()
		for j := range s.RealServers {
			r := &s.RealServers[j]
			r.MAC = slices.Clone(r.MAC)
			r.Check = r.Check.Clone()
		}
	}
	if c.BGP != nil {
		b := *c.BGP
		b.Peers = slices.Clone(c.BGP.Peers)
		out.BGP = &b
	}
	if c.HA != nil {
		h := *c.HA
		h.Addrs = slices.Clone(c.HA.Addrs)
		if h.Sync != nil {
			s := *h.Sync
			s.Peers = slices.Clone(h.Sync.Peers)
			h.Sync = &s
		}
		out.HA = &h
	}
	return &out
}
