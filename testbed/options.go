package testbed

import (
	"fmt"
	"os"
	"regexp"
	"sync/atomic"
)

// Limits on Options.
const (
	// DefaultRealServers is used when Options.RealServers is 0.
	DefaultRealServers = 3
	// MaxRealServers keeps real-server addresses in 198.18.0.11-.99, below the VIP.
	MaxRealServers = 89
	// DefaultMTU is used when Options.MTU is 0.
	DefaultMTU = 1500
	// MaxDirectors keeps directors at 198.18.0.2-.4.
	MaxDirectors = 3
	// MaxDirectorQueues bounds Options.DirectorQueues.
	MaxDirectorQueues = 16
	// maxNameLen keeps "<name>-lanclient" a comfortable file name.
	maxNameLen = 32
)

// Options shapes a lab. The zero value is a good lab: 3 real servers, MTU
// 1500, a unique name, no LAN client.
type Options struct {
	// RealServers is how many real servers (rs1, rs2, ...) to build; 0 means
	// DefaultRealServers, at most MaxRealServers.
	RealServers int
	// Name prefixes every namespace ("<Name>-client", ...). Empty means a
	// unique "drlb<pid>x<counter>", which CleanupStale recognises. Letters,
	// digits, '_' and '.' only, at most 32 characters.
	Name string
	// LANClient adds a client on the LAN itself (198.18.0.50, 2001:2::50),
	// which ARPs for the VIP directly instead of going through the router.
	LANClient bool
	// MTU of every link and of the bridge; 0 means DefaultMTU. 576..65535.
	MTU int
	// Directors is how many directors share the LAN (director at
	// 198.18.0.2, director2 at .3, director3 at .4); 0 means 1, at most
	// MaxDirectors. Several active directors are for BGP and ECMP at the
	// router (README, "Scale-out with BGP").
	Directors int
	// RoutedVIP puts the VIPs off the LAN (198.18.2.100, 2001:2:0:2::100),
	// as a VIP announced by BGP is: the router reaches them only through
	// routes to the directors, never by ARP/NDP.
	RoutedVIP bool
	// DirectorQueues gives each director's interface that many receive
	// queues (0 means one, at most MaxDirectorQueues), for one AF_XDP
	// worker per queue; the switch sends the LAN's flows spread over
	// them by flow hash, as a NIC's RSS does.
	DirectorQueues int
}

// nameCounter makes default names unique within a process; together with the
// pid it makes them unique on the machine. It is the package's only mutable
// state, and it is atomic.
var nameCounter atomic.Uint64

// defaultNameRE matches namespaces of labs with a default name: drlb<pid>x<n>-<host>.
var defaultNameRE = regexp.MustCompile(`^drlb([0-9]+)x[0-9]+-`)

// defaultName returns a fresh unique lab name.
func defaultName() string {
	return fmt.Sprintf("drlb%dx%d", os.Getpid(), nameCounter.Add(1))
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.RealServers == 0 {
		o.RealServers = DefaultRealServers
	}
	if o.RealServers < 1 || o.RealServers > MaxRealServers {
		return o, fmt.Errorf("%w: RealServers = %d, want 1..%d", ErrOptions, o.RealServers, MaxRealServers)
	}
	if o.MTU == 0 {
		o.MTU = DefaultMTU
	}
	if o.Directors == 0 {
		o.Directors = 1
	}
	if o.Directors < 1 || o.Directors > MaxDirectors {
		return o, fmt.Errorf("%w: Directors = %d, want 1..%d", ErrOptions, o.Directors, MaxDirectors)
	}
	if o.DirectorQueues < 0 || o.DirectorQueues > MaxDirectorQueues {
		return o, fmt.Errorf("%w: DirectorQueues = %d, want 0..%d", ErrOptions, o.DirectorQueues, MaxDirectorQueues)
	}
	if o.MTU < 576 || o.MTU > 65535 {
		return o, fmt.Errorf("%w: MTU = %d, want 576..65535", ErrOptions, o.MTU)
	}
	if o.Name == "" {
		o.Name = defaultName()
	}
	if err := checkName(o.Name); err != nil {
		return o, err
	}
	return o, nil
}

// checkName accepts names that are safe as file names and in `ip netns` use.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: Name %q must be 1..%d characters", ErrOptions, name, maxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w: Name %q must not start with '.'", ErrOptions, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w: Name %q has %q at offset %d; use letters, digits, '_' or '.'", ErrOptions, name, c, i)
		}
	}
	return nil
}
