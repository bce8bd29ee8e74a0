package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// The BGP lab (README, "Scale-out with BGP"): BIRD 2 in the router's
// namespace, AS RouterASN, peers passively with every director, AS
// DirectorASN, and installs each VIP they announce with one next hop per
// director (ECMP, hashed by ports).
const (
	RouterASN   = 65000
	DirectorASN = 65001
	// DefaultBGPHold is the hold time BIRDOptions.Hold defaults to, the
	// shortest BGP allows.
	DefaultBGPHold = 3 * time.Second
)

// ErrNoBIRD: the bird binary (BIRD 2) is not in $PATH.
var ErrNoBIRD = errors.New("BIRD 2 is not installed (no bird in $PATH): apt-get install bird2")

// FindBIRD returns the path of the bird binary, or an error wrapping ErrNoBIRD.
func FindBIRD() (string, error) {
	p, err := exec.LookPath("bird")
	if err != nil {
		return "", ErrNoBIRD
	}
	return p, nil
}

// BIRDOptions shape the router's BGP speaker.
type BIRDOptions struct {
	// Dir receives bird.conf, the control socket bird.ctl, bird.pid and
	// bird.log. Required.
	Dir string
	// Hold is the BGP hold time; 0 means DefaultBGPHold. Whole seconds.
	Hold time.Duration
}

// BIRD is BIRD 2 running in the router's namespace (Lab.StartBIRD).
type BIRD struct {
	// Config, Socket, PidFile and Log are its files, in BIRDOptions.Dir.
	Config, Socket, PidFile, Log string
	cmd                          *exec.Cmd
	done                         chan struct{}
	once                         sync.Once
	stopErr                      error
	// mu orders Start against Stop: the lab's Close may stop BIRD
	// between Do entering the router's namespace and the start, and
	// a BIRD started after that would run on unstopped.
	mu      sync.Mutex
	stopped bool // Stop was called: no start any more
}

// BIRDConfig is the router's bird.conf: the kernel protocols merge the
// directors' routes into one multipath route per VIP (merge paths on), and
// one passive BGP session per director accepts what it announces, IPv4
// and IPv6 VIPs.
func (l *Lab) BIRDConfig(hold time.Duration) string {
	if hold == 0 {
		hold = DefaultBGPHold
	}
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nlog stderr all;\n", l.Router.IPv4)
	b.WriteString("protocol device { scan time 1; }\n")
	// merge paths: one kernel route with a next hop per director.
	b.WriteString("protocol kernel { ipv4 { import none; export all; }; merge paths on; learn off; }\n")
	// IPv6 VIPs come over the same IPv4 sessions (MP-BGP, an IPv6 next
	// hop on the LAN).
	b.WriteString("protocol kernel { ipv6 { import none; export all; }; merge paths on; learn off; }\n")
	for i, d := range l.Directors {
		fmt.Fprintf(&b, `protocol bgp director%d {
	local %s as %d;
	neighbor %s as %d;
	passive on;
	hold time %d; keepalive time 1;
	error wait time 1, 2;
	ipv4 { import all; export none; };
	ipv6 { import all; export none; };
}
`, i+1, l.Router.IPv4, RouterASN, d.IPv4, DirectorASN, int(hold/time.Second))
	}
	return b.String()
}

// StartBIRD hashes the router's multipath routes by ports
// (net.ipv4.fib_multipath_hash_policy=1: the lab has one client address),
// writes BIRDConfig into o.Dir and runs BIRD in the foreground in the
// router's namespace, with its own control socket and pid file, logging to
// bird.log. Stop it with BIRD.Stop; Lab.Close stops it too, by its pid,
// so a failed run leaves no BIRD behind.
func (l *Lab) StartBIRD(ctx context.Context, o BIRDOptions) (*BIRD, error) {
	exe, err := FindBIRD()
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("%w: BIRDOptions.Dir is empty", ErrOptions)
	}
	if err := l.Do(l.Router, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/fib_multipath_hash_policy", []byte("1"), 0o644)
	}); err != nil {
		return nil, fmt.Errorf("router: fib_multipath_hash_policy: %w", err)
	}
	b := &BIRD{
		Config: filepath.Join(o.Dir, "bird.conf"), Socket: filepath.Join(o.Dir, "bird.ctl"),
		PidFile: filepath.Join(o.Dir, "bird.pid"), Log: filepath.Join(o.Dir, "bird.log"),
		done: make(chan struct{}),
	}
	if err := os.WriteFile(b.Config, []byte(l.BIRDConfig(o.Hold)), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(b.Log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	b.cmd = exec.Command(exe, "-f", "-c", b.Config, "-s", b.Socket, "-P", b.PidFile)
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	l.birds = append(l.birds, b)
	l.mu.Unlock()
	if err := l.Do(l.Router, func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.stopped {
			return ErrClosed
		}
		return b.cmd.Start()
	}); err != nil {
		close(b.done)
		return nil, fmt.Errorf("starting bird: %w", err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	return b, ctx.Err()
}

// Pid is BIRD's process id.
func (b *BIRD) Pid() int { return b.cmd.Process.Pid }

// Output is what BIRD has logged so far.
func (b *BIRD) Output() string {
	out, _ := os.ReadFile(b.Log)
	return string(out)
}

// Stop ends BIRD by its pid: SIGTERM, SIGKILL after 3 s. It is idempotent.
func (b *BIRD) Stop() error {
	b.mu.Lock()
	b.stopped = true
	started := b.cmd.Process != nil
	b.mu.Unlock()
	if !started { // and never will be
		return nil
	}
	b.once.Do(func() {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(3 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
			b.stopErr = fmt.Errorf("bird (pid %d) did not stop within 3s of SIGTERM; killed", b.cmd.Process.Pid)
		}
	})
	return b.stopErr
}

// Route is h's kernel route to one address, as `ip route show ADDR` lists it.
type Route struct {
	Dst netip.Addr
	// Proto is who installed it ("bird", "static", or a number), Metric
	// its priority.
	Proto  string
	Metric int
	// NextHops are the gateways, one per ECMP path; Devs their devices.
	NextHops []netip.Addr
	Devs     []string
}

// String prints the route as `ip route show` does, "(no route)" without one.
func (r Route) String() string {
	switch len(r.NextHops) {
	case 0:
		return fmt.Sprintf("(no route to %s)", r.Dst)
	case 1:
		return fmt.Sprintf("%s via %s dev %s proto %s metric %d", r.Dst, r.NextHops[0], r.Devs[0], r.Proto, r.Metric)
	}
	s := fmt.Sprintf("%s proto %s metric %d", r.Dst, r.Proto, r.Metric)
	for i, nh := range r.NextHops {
		s += fmt.Sprintf("\n\tnexthop via %s dev %s weight 1", nh, r.Devs[i])
	}
	return s
}

// routeProtos names the route protocols (rtnetlink RTPROT_*) the lab meets.
var routeProtos = map[netlink.RouteProtocol]string{2: "kernel", 3: "boot", 4: "static", 12: "bird", 186: "bgp"}

// routeTo reads h's route to dst (a host route: /32, /128) through nh.
func routeTo(nh *netlink.Handle, dst netip.Addr) (Route, error) {
	r := Route{Dst: dst}
	family, bits := netlink.FAMILY_V4, 32
	if dst.Is6() {
		family, bits = netlink.FAMILY_V6, 128
	}
	routes, err := nh.RouteListFiltered(family, &netlink.Route{Dst: &net.IPNet{IP: dst.AsSlice(), Mask: net.CIDRMask(bits, bits)}}, netlink.RT_FILTER_DST)
	if err != nil {
		return r, err
	}
	dev := func(index int) string {
		if link, err := nh.LinkByIndex(index); err == nil {
			return link.Attrs().Name
		}
		return fmt.Sprint(index)
	}
	add := func(gw net.IP, index int) {
		a, _ := netip.AddrFromSlice(gw)
		r.NextHops = append(r.NextHops, a.Unmap())
		r.Devs = append(r.Devs, dev(index))
	}
	for _, rt := range routes {
		r.Proto, r.Metric = routeProtos[rt.Protocol], rt.Priority
		if r.Proto == "" {
			r.Proto = fmt.Sprint(int(rt.Protocol))
		}
		if rt.Gw != nil {
			add(rt.Gw, rt.LinkIndex)
		}
		for _, p := range rt.MultiPath {
			add(p.Gw, p.LinkIndex)
		}
	}
	return r, nil
}

// RouteTo returns h's kernel route to dst (an IPv4 address), e.g. the
// router's to a routed VIP: what BIRD installed.
func (l *Lab) RouteTo(h *Host, dst netip.Addr) (Route, error) {
	nh, err := l.Netlink(h)
	if err != nil {
		return Route{Dst: dst}, err
	}
	defer nh.Close()
	return routeTo(nh, dst)
}

// WaitNextHops polls h's route to dst every poll until it has exactly n
// next hops, at most timeout; it returns the route and how long it took
// (an error wrapping context.DeadlineExceeded with the last route seen
// when it never did).
func (l *Lab) WaitNextHops(ctx context.Context, h *Host, dst netip.Addr, n int, timeout, poll time.Duration) (Route, time.Duration, error) {
	start := time.Now()
	nh, err := l.Netlink(h)
	if err != nil {
		return Route{Dst: dst}, 0, err
	}
	defer nh.Close()
	for {
		r, err := routeTo(nh, dst)
		took := time.Since(start)
		switch {
		case err != nil:
			return r, took, err
		case len(r.NextHops) == n:
			return r, took, nil
		case took > timeout:
			return r, took, fmt.Errorf("%s: route to %s has %d next hops %v after %v, want %d: %w",
				h.Name, dst, len(r.NextHops), r.NextHops, timeout, n, context.DeadlineExceeded)
		}
		select {
		case <-ctx.Done():
			return r, took, ctx.Err()
		case <-time.After(poll):
		}
	}
}
