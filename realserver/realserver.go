package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Config says which VIP to serve and where.
type Config struct {
	// VIP is the virtual address, IPv4 or IPv6.
	VIP netip.Addr
	// Iface is the LAN interface facing the director; optional. Without it
	// only the "all" sysctls are set, which is enough on its own since the
	// kernel takes the larger of "all" and the interface's value.
	Iface string
	// StateFile defaults to DefaultStatePath(VIP).
	StateFile string
}

// Step is one thing Up or Down did or found already so, written as the
// command an operator would type.
type Step struct {
	// Command is like "ip addr add 198.18.0.100/32 dev lo"; empty for a comment.
	Command string
	// Skipped says why the command was not needed ("already set"), or is empty.
	Skipped string
	// Comment is an explanation printed as "# ...".
	Comment string
}

func (s Step) String() string {
	switch {
	case s.Command == "":
		return "# " + s.Comment
	case s.Skipped != "":
		return s.Command + " (" + s.Skipped + ")"
	default:
		return s.Command
	}
}

// Wanted sysctl values on a real server.
const (
	arpIgnore   = "1"
	arpAnnounce = "2"
)

// check validates c and fills in defaults.
func (c Config) check(sys System) (Config, error) {
	v := c.VIP
	switch {
	case !v.IsValid():
		return c, fmt.Errorf("%w: --vip is missing", ErrConfig)
	case v.Zone() != "":
		return c, fmt.Errorf("%w: VIP %s has a zone; use a global address", ErrConfig, v)
	case v.Is4In6():
		return c, fmt.Errorf("%w: VIP %s is IPv4-mapped; write it as %s", ErrConfig, v, v.Unmap())
	case v.IsUnspecified() || v.IsLoopback() || v.IsMulticast() || v.IsLinkLocalUnicast() || v == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return c, fmt.Errorf("%w: VIP %s is not a unicast service address", ErrConfig, v)
	}
	if c.Iface != "" {
		if err := checkDevName(c.Iface); err != nil {
			return c, fmt.Errorf("%w: --iface: %v", ErrConfig, err)
		}
		if c.Iface == "lo" {
			return c, fmt.Errorf("%w: --iface lo: give the LAN interface facing the director; the VIP goes on lo by itself", ErrConfig)
		}
		ok, err := sys.LinkExists(c.Iface)
		if err != nil {
			return c, err
		}
		if !ok {
			return c, fmt.Errorf("%w: --iface %s: no such interface", ErrConfig, c.Iface)
		}
	}
	if c.StateFile == "" {
		c.StateFile = DefaultStatePath(v)
	}
	return c, nil
}

// checkDevName accepts Linux interface names (1..15 bytes, no '/', ':' or
// white space, not "." or "..") other than the sysctl directories "all"
// and "default".
func checkDevName(dev string) error {
	if dev == "" || len(dev) > 15 || dev == "." || dev == ".." || dev == "all" || dev == "default" ||
		strings.ContainsAny(dev, "/: \t\n") {
		return fmt.Errorf("%q is not an interface name", dev)
	}
	return nil
}

// vipPrefix is the VIP as a host route: /32 or /128.
func vipPrefix(v netip.Addr) netip.Prefix { return netip.PrefixFrom(v, v.BitLen()) }

func addrCmd(verb string, p netip.Prefix) string {
	return fmt.Sprintf("ip addr %s %s dev lo", verb, p)
}

func sysctlCmd(path, value string) string {
	return fmt.Sprintf("sysctl -w %s=%s", SysctlName(path), value)
}

// setting is a sysctl and the value Up wants.
type setting struct{ Path, Value string }

// wanted lists the sysctls Up sets for c, in order: "all", --iface, then
// every other interface whose own value would win over "all" (overriding).
func (c Config) wanted(sys System) ([]setting, error) {
	if !c.VIP.Is4() {
		return nil, nil
	}
	devs := []string{"all"}
	if c.Iface != "" {
		devs = append(devs, c.Iface)
	}
	var s []setting
	for _, d := range devs {
		s = append(s,
			setting{"net/ipv4/conf/" + d + "/arp_ignore", arpIgnore},
			setting{"net/ipv4/conf/" + d + "/arp_announce", arpAnnounce})
	}
	more, err := overriding(sys, devs)
	return append(s, more...), err
}

// overriding lists the interfaces' settings that would undo "all"'s:
// the kernel uses the larger of net.ipv4.conf.all.X and the receiving
// interface's own. arp_ignore 3 still answers for the VIP on lo (a
// global address) and 4 to 7 answer everything, as 0 does; 8 answers
// nothing and is left alone. An arp_announce above 2 acts as 0. Without
// this, up on a host whose eth0 had arp_ignore 3 left the host answering
// ARP for the VIP (ARP flux) while saying it was set up. Interfaces in
// skip, lo and "default" (only new interfaces' start) are not listed.
func overriding(sys System, skip []string) ([]setting, error) {
	l, ok := sys.(interface{ Devices() ([]string, error) })
	if !ok {
		return nil, nil
	}
	devs, err := l.Devices()
	if err != nil {
		return nil, err
	}
	var s []setting
	for _, d := range devs {
		if d == "lo" || d == "default" || slices.Contains(skip, d) {
			continue
		}
		for _, w := range []struct {
			key, value string
			bad        func(int) bool
		}{
			{"arp_ignore", arpIgnore, func(n int) bool { return n >= 3 && n <= 7 }},
			{"arp_announce", arpAnnounce, func(n int) bool { return n > 2 }},
		} {
			path := "net/ipv4/conf/" + d + "/" + w.key
			v, err := sys.ReadSysctl(path)
			if errors.Is(err, ErrNoSysctl) {
				continue // the interface went away meanwhile
			}
			if err != nil {
				return nil, err
			}
			if n, err := strconv.Atoi(v); err == nil && w.bad(n) {
				s = append(s, setting{path, w.value})
			}
		}
	}
	return s, nil
}

// Up makes the host a real server for c.VIP. It is idempotent: run twice,
// it changes nothing the second time and keeps the first run's record of
// how things were. On error it puts back the sysctls it changed (and its
// state file as it was) and returns the steps taken, undoing included.
func Up(sys System, c Config) ([]Step, error) {
	c, err := c.check(sys)
	if err != nil {
		return nil, err
	}
	st, err := loadState(c.StateFile)
	if err != nil {
		return nil, err
	}
	p := vipPrefix(c.VIP)
	has, err := sys.HasAddr("lo", p)
	if err != nil {
		return nil, err
	}
	created := st == nil
	if st == nil {
		st = &State{VIP: c.VIP, AddedAddr: !has}
	} else if st.VIP != c.VIP {
		return nil, fmt.Errorf("%w: %s belongs to VIP %s, not %s", ErrState, c.StateFile, st.VIP, c.VIP)
	}
	// Record how things were before touching anything.
	want, err := c.wanted(sys)
	if err != nil {
		return nil, err
	}
	recorded := len(st.Sysctls)
	current := make([]string, len(want))
	for i, w := range want {
		if current[i], err = sys.ReadSysctl(w.Path); err != nil {
			return nil, err
		}
		if _, ok := st.previous(w.Path); !ok {
			st.Sysctls = append(st.Sysctls, SavedSysctl{Path: w.Path, Previous: current[i]})
		}
	}
	if err := saveState(c.StateFile, st); err != nil {
		return nil, err
	}

	// The sysctls first, the VIP last: a VIP on lo with ARP not yet
	// suppressed is answered for by this host (ARP flux), for good if a
	// sysctl write fails.
	var steps []Step
	var written []int // indexes into want this call changed
	// A failure part way must not leave the host half set up (ARP
	// suppressed host-wide for a VIP that never came up, while the
	// operator is told up failed): undo puts back what this call wrote
	// and its state file as it found it.
	undo := func(err error) ([]Step, error) {
		if len(written) > 0 {
			steps = append(steps, Step{Comment: "up failed: putting back what it changed"})
		}
		var errs []error
		for j := len(written) - 1; j >= 0; j-- {
			i := written[j]
			cmd := sysctlCmd(want[i].Path, current[i])
			if werr := sys.WriteSysctl(want[i].Path, current[i]); werr != nil {
				errs = append(errs, fmt.Errorf("%s: %w", cmd, werr))
				continue
			}
			steps = append(steps, Step{Command: cmd})
		}
		if len(errs) > 0 {
			// The state file stays: down restores from it.
			return steps, errors.Join(append([]error{err}, errs...)...)
		}
		var serr error
		switch {
		case created:
			if rerr := os.Remove(c.StateFile); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				serr = fmt.Errorf("removing state file: %w", rerr)
			}
		case len(st.Sysctls) != recorded:
			st.Sysctls = st.Sysctls[:recorded]
			serr = saveState(c.StateFile, st)
		}
		return steps, errors.Join(err, serr)
	}
	for i, w := range want {
		cmd := sysctlCmd(w.Path, w.Value)
		if current[i] == w.Value {
			steps = append(steps, Step{Command: cmd, Skipped: "already set"})
			continue
		}
		if err := sys.WriteSysctl(w.Path, w.Value); err != nil {
			return undo(fmt.Errorf("%s: %w", cmd, err))
		}
		written = append(written, i)
		steps = append(steps, Step{Command: cmd})
	}
	if has {
		steps = append(steps, Step{Command: addrCmd("add", p), Skipped: "already set"})
	} else {
		if err := sys.AddAddr("lo", p); err != nil {
			return undo(fmt.Errorf("%s: %w", addrCmd("add", p), err))
		}
		steps = append(steps, Step{Command: addrCmd("add", p)})
	}
	if !c.VIP.Is4() {
		steps = append(steps, Step{Comment: "IPv6: no sysctl needed, the kernel answers neighbour solicitations only for addresses on the receiving interface"})
	}
	return steps, nil
}

// Down undoes Up using its state file: the VIP leaves lo only if Up put
// it there, then the sysctls go back to their previous values, unless
// another VIP's state file beside this one (realserver up for several
// VIPs) still needs them: that one takes over this file's record of how
// they were, so the last Down puts them back. Without a state file it
// removes the VIP from lo and leaves the sysctls alone. The state file is
// removed at the end.
func Down(sys System, c Config) ([]Step, error) {
	// Down acts on the interfaces the state file names, whatever --iface says.
	c.Iface = ""
	c, err := c.check(sys)
	if err != nil {
		return nil, err
	}
	st, err := loadState(c.StateFile)
	if err != nil {
		return nil, err
	}
	p := vipPrefix(c.VIP)
	var steps []Step
	if st == nil {
		steps = append(steps, Step{Comment: fmt.Sprintf("no state file %s: sysctls left as they are", c.StateFile)})
		st = &State{VIP: c.VIP, AddedAddr: true}
	} else if st.VIP != c.VIP {
		return nil, fmt.Errorf("%w: %s belongs to VIP %s, not %s", ErrState, c.StateFile, st.VIP, c.VIP)
	}
	// The VIP first, the sysctls last, the reverse of Up: ARP stays
	// suppressed while the VIP is on lo.
	has, err := sys.HasAddr("lo", p)
	if err != nil {
		return steps, err
	}
	switch {
	case !st.AddedAddr:
		steps = append(steps, Step{Comment: fmt.Sprintf("%s was on lo before up: left in place", p)})
	case !has:
		steps = append(steps, Step{Command: addrCmd("del", p), Skipped: "already absent"})
	default:
		if err := sys.DelAddr("lo", p); err != nil {
			return steps, fmt.Errorf("%s: %w", addrCmd("del", p), err)
		}
		steps = append(steps, Step{Command: addrCmd("del", p)})
	}
	if len(st.Sysctls) > 0 {
		heir, err := handOver(sys, c.StateFile, st)
		if err != nil {
			return steps, err
		}
		if heir.IsValid() {
			steps = append(steps, Step{Comment: fmt.Sprintf("ARP sysctls left as they are: VIP %s still needs them (its down puts them back)", heir)})
			st.Sysctls = nil
		}
	}
	// Interfaces first, then "all", the reverse of Up.
	for i := len(st.Sysctls) - 1; i >= 0; i-- {
		s := st.Sysctls[i]
		cmd := sysctlCmd(s.Path, s.Previous)
		cur, err := sys.ReadSysctl(s.Path)
		if errors.Is(err, ErrNoSysctl) {
			steps = append(steps, Step{Command: cmd, Skipped: "interface gone"})
			continue
		}
		if err != nil {
			return steps, err
		}
		if cur == s.Previous {
			steps = append(steps, Step{Command: cmd, Skipped: "already set"})
			continue
		}
		if err := sys.WriteSysctl(s.Path, s.Previous); err != nil {
			return steps, fmt.Errorf("%s: %w", cmd, err)
		}
		steps = append(steps, Step{Command: cmd})
	}
	if err := os.Remove(c.StateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return steps, fmt.Errorf("removing state file: %w", err)
	}
	return steps, nil
}

// handOver gives st's record of the sysctls to another IPv4 VIP's state
// file beside path, if there is one, and returns that VIP (zero if none):
// its own record may hold what the first up set (arp_ignore 1), not how
// things were before, so the entries st knows better replace those, and
// the ones it lacks (an interface only st's up set) are added. Only a
// state file named as up names them (DefaultStatePath) counts, and only
// while its VIP is on lo here: a stale file, or one of another network
// namespace sharing the directory, must not keep this host's sysctls.
func handOver(sys System, path string, st *State) (netip.Addr, error) {
	names, err := filepath.Glob(filepath.Join(filepath.Dir(path), "realserver-*.json"))
	if err != nil {
		return netip.Addr{}, err
	}
	for _, name := range names {
		if name == path {
			continue
		}
		o, err := loadState(name)
		if err != nil || o == nil || !o.VIP.Is4() || o.VIP == st.VIP || filepath.Base(name) != filepath.Base(DefaultStatePath(o.VIP)) {
			continue // not a state file of this package, or no sysctls
		}
		if on, err := sys.HasAddr("lo", vipPrefix(o.VIP)); err != nil || !on {
			continue // stale, or another namespace's
		}
		for _, mine := range st.Sysctls {
			i := slices.IndexFunc(o.Sysctls, func(s SavedSysctl) bool { return s.Path == mine.Path })
			switch {
			case i < 0:
				o.Sysctls = append(o.Sysctls, mine)
			case o.Sysctls[i].Previous == wantedValue(mine.Path):
				o.Sysctls[i].Previous = mine.Previous
			}
		}
		if err := saveState(name, o); err != nil {
			return netip.Addr{}, err
		}
		return o.VIP, nil
	}
	return netip.Addr{}, nil
}

// wantedValue is the value Up sets the sysctl at path to.
func wantedValue(path string) string {
	if filepath.Base(path) == "arp_ignore" {
		return arpIgnore
	}
	return arpAnnounce
}
