package director

import (
	"errors"
	"slices"

	"github.com/drlb/drlb/config"
)

// TEMPORARY STAND-IN (issue 11), to be replaced by the live-apply core
// written on another branch: the merge deletes this file. It gives
// *Director the methods control.Editor needs so that `drlb ctl` builds:
// Config works (drlb ctl -S, -L --timeout), Apply refuses every change,
// ZeroCounters does nothing but say so.

// errApplyNotBuilt is what the stand-in Apply answers.
var errApplyNotBuilt = errors.New("director: live changes are not built yet (issue 11): change the config file and restart")

// Config returns a deep copy of the running configuration.
func (d *Director) Config() *config.Config {
	c := *d.cfg
	c.Services = slices.Clone(d.cfg.Services)
	for i := range c.Services {
		s := &c.Services[i]
		s.RealServers = slices.Clone(s.RealServers)
		for j := range s.RealServers {
			r := &s.RealServers[j]
			r.MAC = slices.Clone(r.MAC)
			if r.Check != nil {
				k := *r.Check
				r.Check = &k
			}
		}
	}
	return &c
}

// Apply refuses: the stand-in applies nothing.
func (d *Director) Apply(cfg *config.Config) error { return errApplyNotBuilt }

// ZeroCounters does nothing in the stand-in.
func (d *Director) ZeroCounters() {
	d.log.Warn("drlb ctl -Z: zeroing counters is not built yet (issue 11); nothing changed")
}
