package director

import (
	"errors"
	"fmt"

	"github.com/drlb/drlb/config"
)

// ErrRestartNeeded is returned by Reload for a change it cannot apply live.
var ErrRestartNeeded = errors.New("director: change needs a restart")

// Reload applies a new configuration's weights, as keepalived does on
// SIGHUP: weight 0 drains a real server (no new connections, open ones
// continue), any other weight takes effect for new connections at once.
// Adding or removing services or real servers is refused with
// ErrRestartNeeded, and then nothing at all is applied.
func (d *Director) Reload(cfg *config.Config) error {
	if err := sameShape(d.cfg, cfg); err != nil {
		return err
	}
	for i, s := range cfg.Services {
		for j, r := range s.RealServers {
			if err := d.fw.SetWeight(i, j, r.Weight); err != nil {
				return err
			}
			if d.cfg.Services[i].RealServers[j].Weight != r.Weight {
				d.log.Info("weight changed", "service", s.String(), "real", r.Address, "from", d.cfg.Services[i].RealServers[j].Weight, "to", r.Weight)
				d.cfg.Services[i].RealServers[j].Weight = r.Weight
			}
		}
	}
	return nil
}

func sameShape(old, cur *config.Config) error {
	if len(old.Services) != len(cur.Services) {
		return fmt.Errorf("%w: %d services instead of %d", ErrRestartNeeded, len(cur.Services), len(old.Services))
	}
	for i := range cur.Services {
		o, c := old.Services[i], cur.Services[i]
		if o.VIP != c.VIP || o.Port != c.Port || o.Protocol != c.Protocol || o.Scheduler != c.Scheduler || o.Persistence != c.Persistence {
			return fmt.Errorf("%w: service %d changed from %s to %s (only weights change live)", ErrRestartNeeded, i, o.String(), c.String())
		}
		if len(o.RealServers) != len(c.RealServers) {
			return fmt.Errorf("%w: service %s: real servers added or removed (only weights change live)", ErrRestartNeeded, c.String())
		}
		for j := range c.RealServers {
			if o.RealServers[j].Address != c.RealServers[j].Address {
				return fmt.Errorf("%w: service %s: real server %s replaced by %s (only weights change live)", ErrRestartNeeded, c.String(), o.RealServers[j].Address, c.RealServers[j].Address)
			}
		}
	}
	return nil
}
