package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/doctor"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
)

// scenarioRuns holds each scenario's run, by name; every entry of
// scenarios has one (TestScenarioRuns). Each run is in its own file and
// ends with r.finish(): the pcaps and the check table.
var scenarioRuns = map[string]func(*runner, context.Context) error{
	"arp-flux":      (*runner).arpFlux,
	"forwarding-on": (*runner).forwardingOn,
	"restart":       (*runner).restart,
	"mtu":           (*runner).mtu,
	"scale-out":     (*runner).scaleOut,
	"failover":      (*runner).failover,
}

// ctlPath is the lab director's control socket, private to the run (not
// /run/drlb/drlb.sock, which a real director may hold): startDirector
// always passes it.
func (r *runner) ctlPath() string { return filepath.Join(r.dir, "drlb.sock") }

// counters reads the running director's frame counters by verdict reason
// ("no-conn", "adopted", ...) from its control socket.
func (r *runner) counters(ctx context.Context) (map[string]uint64, error) {
	return frameCounters(ctx, r.ctlPath())
}

// frameCounters reads the frame counters of the director behind sock.
func frameCounters(ctx context.Context, sock string) (map[string]uint64, error) {
	s, err := control.Get(ctx, sock, false)
	if err != nil {
		return nil, err
	}
	return s.Frames, nil
}

// sysctl sets dotted sysctls ("net.ipv4.ip_forward", "1", ...) in h and
// prints the commands, with comment.
func (r *runner) sysctl(h *testbed.Host, comment string, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		key, val := kv[i], kv[i+1]
		cmdLine(r.w, fmt.Sprintf("ip netns exec %s sysctl -w %s=%s", h.NSName, key, val), comment)
		err := r.l.Do(h, func() error {
			return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(val), 0o644)
		})
		if err != nil {
			return fmt.Errorf("%s: sysctl %s=%s: %w", h.Name, key, val, err)
		}
	}
	return nil
}

// setMTU sets the MTU of h's LAN interface and prints the command.
func (r *runner) setMTU(h *testbed.Host, mtu int, comment string) error {
	cmdLine(r.w, fmt.Sprintf("ip -n %s link set dev %s mtu %d", h.NSName, h.Iface, mtu), comment)
	nh, link, err := lanLink(r.l, h)
	if err != nil {
		return err
	}
	defer nh.Close()
	return nh.LinkSetMTU(link, mtu)
}

// neighbor returns h's neighbour entry for addr on its LAN interface, as
// `ip neigh show ADDR` prints it, and its MAC (nil if there is none).
func neighbor(l *testbed.Lab, h *testbed.Host, addr netip.Addr) (net.HardwareAddr, string, error) {
	nh, link, err := lanLink(l, h)
	if err != nil {
		return nil, "", err
	}
	defer nh.Close()
	neighs, err := nh.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return nil, "", err
	}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == addr {
			if len(n.HardwareAddr) == 0 {
				return nil, fmt.Sprintf("%s dev %s %s", addr, h.Iface, neighState(n.State)), nil
			}
			return n.HardwareAddr, fmt.Sprintf("%s dev %s lladdr %s %s", addr, h.Iface, n.HardwareAddr, neighState(n.State)), nil
		}
	}
	return nil, fmt.Sprintf("(no entry for %s)", addr), nil
}

// neighState spells a neighbour state as ip neigh does.
func neighState(s int) string {
	for _, x := range []struct {
		bit  int
		name string
	}{{netlink.NUD_PERMANENT, "PERMANENT"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"},
		{netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_FAILED, "FAILED"}} {
		if s&x.bit != 0 {
			return x.name
		}
	}
	return fmt.Sprintf("state %#x", s)
}

// macName names the lab host owning mac ("rs1", "director", "router"),
// or spells the MAC.
func (r *runner) macName(mac net.HardwareAddr) string {
	l := r.l
	if bytes.Equal(mac, l.RouterUplink.MAC) {
		return "router eth1"
	}
	for _, h := range l.Hosts() {
		if bytes.Equal(mac, h.MAC) {
			return h.Name
		}
	}
	return mac.String()
}

// realServerByName returns the lab's real server called name, or nil.
func (r *runner) realServerByName(name string) *testbed.Host {
	for _, rs := range r.l.RealServers {
		if rs.Name == name {
			return rs
		}
	}
	return nil
}

// answer is one request of a scenario: the client's port, who answered,
// or why nobody did.
type answer struct {
	port   uint16
	server string
	err    error
}

// getN sends n requests through the VIP, one after another, each on a new
// connection and bounded by timeout.
func (r *runner) getN(ctx context.Context, n int, timeout time.Duration) []answer {
	c := r.l.HTTPClient(r.l.Client)
	defer c.CloseIdleConnections()
	c.Timeout = timeout
	url := fmt.Sprintf("http://%s/", r.l.VIP)
	var as []answer
	for i := 0; i < n; i++ {
		server, local, err := get(ctx, c, url)
		as = append(as, answer{port: local.Port(), server: server, err: err})
	}
	return as
}

// answerCounts counts the answers by real server, in lab order:
// "rs1=2 rs2=2 rs3=2", and how many got none.
func (r *runner) answerCounts(as []answer) (string, int) {
	got := map[string]int{}
	failed := 0
	for _, a := range as {
		if a.err != nil {
			failed++
			continue
		}
		got[a.server]++
	}
	return distString(r.l, got), failed
}

// synOf returns the first SYN from the client's port to the VIP in frames.
func (r *runner) synOf(frames []frame, port uint16) *frame {
	client := netip.AddrPortFrom(r.l.Client.IPv4, port)
	vip := netip.AddrPortFrom(r.l.VIP, r.svc.port)
	return first(frames, func(f *frame) bool { return f.isTCP(client, vip) && f.isSYN() })
}

// printDoctor prints a doctor report for a host under the command it
// stands for.
func (r *runner) printDoctor(where, command string, rep doctor.Report) {
	fmt.Fprintf(r.w, "On %s: %s\n\n", where, command)
	printReport(r.w, rep)
	fmt.Fprintln(r.w)
}

// failedChecks names a report's failed checks.
func failedChecks(rep doctor.Report) []string {
	var s []string
	for _, c := range rep {
		if c.Status == doctor.Fail {
			s = append(s, c.Name)
		}
	}
	return s
}
