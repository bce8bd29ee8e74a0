package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/doctor"
	"github.com/drlb/drlb/realserver"
	"github.com/drlb/drlb/testbed"
	"io"
)

// topology is section 1: what was built. marks names what a scenario
// changes on a host, for the drawing.
func (r *runner) topology(marks map[string]string) {
	w, l := r.w, r.l
	r.section("The network")
	fmt.Fprintf(w, "Built in %d network namespaces (nothing touches this machine's own network).\n", len(l.Hosts())+1)
	how := "the router asks the LAN who has the VIP"
	if routedVIP(l) {
		how = "the router reaches the VIP through the directors' BGP routes"
	}
	fmt.Fprintf(w, "The client is routed, as on the Internet: %s.\n\n", how)
	printTopology(w, l)
	r.page.add("The network", topologySVG(l, marks),
		fmt.Sprintf("Built in %d network namespaces (lab %s): the client is routed, as on the Internet, so %s.", len(l.Hosts())+1, l.Name, how))
}

// directorSetup is section 2: the director's host settings and the
// service, with the commands an operator would type.
func (r *runner) directorSetup() error {
	w, l := r.w, r.l
	r.section("The director")
	fmt.Fprintln(w, "In DR the director only rewrites MAC addresses. It must receive the frames for the")
	fmt.Fprintln(w, "VIP, but its kernel must NOT own the VIP: it would answer TCP itself (with resets).")
	fmt.Fprintln(w, "So drlb, not the kernel, answers ARP for the VIP, and the kernel must not route the")
	fmt.Fprintf(w, "copy of each VIP frame it also receives. On a real director you would type:\n\n")
	vals := map[string]string{}
	keys := []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/send_redirects", "net/ipv4/conf/" + l.Director.Iface + "/send_redirects"}
	if err := l.Do(l.Director, func() error {
		for _, k := range keys {
			v, err := os.ReadFile(filepath.Join("/proc/sys", k))
			if err != nil {
				return err
			}
			vals[k] = strings.TrimSpace(string(v))
		}
		return nil
	}); err != nil {
		return err
	}
	cmdLine(w, fmt.Sprintf("ip addr add %s/24 dev %s", l.Director.IPv4, l.Director.Iface), "its own address only")
	cmdLine(w, fmt.Sprintf("# no 'ip addr add %s ...' anywhere", l.VIP), "drlb answers ARP for the VIP")
	for _, k := range keys {
		cmdLine(w, "sysctl -w "+realserver.SysctlName(k)+"=0", "lab: "+vals[k])
	}
	fmt.Fprintln(w)
	cfg, err := r.writeConfig("drlb.yaml", r.svc)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "The virtual service, as drlb YAML (%s):\n\n", r.cfgPath)
	indent(w, "    ", r.svc.yaml())
	fmt.Fprintf(w, "\nThe same as ipvsadm rules (-g: direct routing; drlb run -c also reads this form):\n\n")
	indent(w, "    ", config.FormatIPVSADM(cfg))
	fmt.Fprintf(w, "\nScheduler %s, weights %s: ", r.o.Scheduler, weightList(r.svc.weights))
	switch t := schedTraits(r.o.Scheduler); {
	case t.Consistent:
		fmt.Fprintln(w, "new connections go to the real server the client's address hashes to.")
	case t.LoadBased && t.Weighted:
		fmt.Fprintln(w, "new connections go to the least loaded real server for its weight.")
	case t.LoadBased:
		fmt.Fprintln(w, "new connections go to the real server with the fewest connections.")
	case t.Weighted:
		fmt.Fprintln(w, "new connections go to each real server in proportion to its weight.")
	default:
		fmt.Fprintln(w, "new connections go to each real server in turn.")
	}
	return nil
}

// writeConfig saves svc as the director's config file name in the run's
// directory, which becomes r.cfgPath, and parses it back as drlb run will.
func (r *runner) writeConfig(name string, svc service) (*config.Config, error) {
	yml := svc.yaml()
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		return nil, err
	}
	cfg, err := config.Parse(path, []byte(yml))
	if err != nil {
		return nil, err
	}
	r.cfgPath = path
	return cfg, nil
}

// weightList spells weights as "3:2:1".
func weightList(ws []int) string {
	s := make([]string, len(ws))
	for i, x := range ws {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ":")
}

// realServerSetup is section 3: `drlb realserver up`, run for real in each
// real server (the lab already did it, so every step says so).
func (r *runner) realServerSetup() error {
	w, l := r.w, r.l
	r.section("The real servers")
	fmt.Fprintln(w, "The director hands each real server the client's packet unchanged: destination VIP.")
	fmt.Fprintln(w, "A real server accepts it only if it holds the VIP itself, so the VIP goes on lo. It")
	fmt.Fprintln(w, "must never answer ARP for the VIP, or it would steal the VIP from the director")
	fmt.Fprintln(w, "(\"ARP flux\"): arp_ignore=1 (answer only for addresses of the asked interface) and")
	fmt.Fprintln(w, "arp_announce=2 (never put the VIP in our own ARP requests). Its default gateway is")
	fmt.Fprintf(w, "the router, never the director: replies go straight back to the client.\n\n")
	for i, rs := range l.RealServers {
		steps, err := r.realserverUp(rs)
		if err != nil {
			return err
		}
		changed := 0
		for _, s := range steps {
			if s.Command != "" && s.Skipped == "" {
				changed++
			}
		}
		if i > 0 {
			fmt.Fprintf(w, "  %s: the same; %d of %d steps needed doing.\n", rs.Name, changed, len(steps))
			continue
		}
		fmt.Fprintf(w, "On %s, `drlb realserver up --vip %s --iface %s` does (ran here for real):\n\n", rs.Name, l.VIP, rs.Iface)
		for _, s := range steps {
			fmt.Fprintf(w, "  $ %s\n", s)
		}
		cmdLine(w, fmt.Sprintf("ip route replace default via %s", l.Router.IPv4), "the router, not the director")
		fmt.Fprintln(w)
	}
	return nil
}

// realserverUp runs `drlb realserver up` for the VIP in rs and returns
// its steps.
func (r *runner) realserverUp(rs *testbed.Host) ([]realserver.Step, error) {
	var steps []realserver.Step
	err := r.l.Do(rs, func() error {
		var err error
		steps, err = realserver.Up(realserver.NewSystem("", nil), realserver.Config{
			VIP: r.l.VIP, Iface: rs.Iface, StateFile: filepath.Join(r.dir, rs.Name+"-realserver.json"),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: drlb realserver up: %w", rs.Name, err)
	}
	return steps, nil
}

// doctorDirector makes drlb doctor's checks in the director's namespace,
// reachability and MTU of every real server included.
func (r *runner) doctorDirector() (doctor.Report, error) {
	l := r.l
	var rep doctor.Report
	err := l.Do(l.Director, func() error {
		rep = doctor.Director(doctor.System{}, l.Director.Iface, []netip.Addr{l.VIP}, r.svc.reals...)
		rep = append(rep, doctor.Reachability(doctor.System{}, l.Director.Iface, r.svc.reals, time.Second)...)
		return nil
	})
	return rep, err
}

// doctorRealServer makes drlb doctor -role realserver's checks in rs.
func (r *runner) doctorRealServer(rs *testbed.Host) (doctor.Report, error) {
	l := r.l
	var rep doctor.Report
	err := l.Do(rs, func() error {
		rep = doctor.RealServer(doctor.System{}, rs.Iface, []netip.Addr{l.VIP}, l.Director.IPv4)
		return nil
	})
	return rep, err
}

// doctorRSCommand is the command line doctorRealServer stands for.
func (r *runner) doctorRSCommand(rs *testbed.Host) string {
	return fmt.Sprintf("drlb doctor -role realserver -iface %s -vip %s -director %s", rs.Iface, r.l.VIP, r.l.Director.IPv4)
}

// doctor is section 4: the same checks `drlb doctor` makes, in each host.
func (r *runner) doctor() error {
	w, l := r.w, r.l
	r.section("drlb doctor")
	rep, err := r.doctorDirector()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "On the director: drlb doctor -c %s\n\n", filepath.Base(r.cfgPath))
	printReport(w, rep)
	r.checks.add("doctor: director", !rep.Failed(), "%s", reportSummary(rep))
	failed := 0
	for i, rs := range l.RealServers {
		rep, err := r.doctorRealServer(rs)
		if err != nil {
			return err
		}
		if rep.Failed() {
			failed++
		}
		if i == 0 || rep.Failed() {
			fmt.Fprintf(w, "\nOn %s: %s\n\n", rs.Name, r.doctorRSCommand(rs))
			printReport(w, rep)
		} else {
			fmt.Fprintf(w, "On %s: %s\n", rs.Name, reportSummary(rep))
		}
		if i == 0 && len(l.RealServers) > 1 {
			fmt.Fprintln(w)
		}
	}
	r.checks.add("doctor: real servers", failed == 0, "%d of %d with failures", failed, len(l.RealServers))
	return nil
}

// printReport prints a doctor table indented, like Report.Print, with
// long findings cut so the table stays readable in a terminal.
func printReport(w io.Writer, rep doctor.Report) {
	const maxDetail = 60
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATUS\tCHECK\tFOUND")
	for _, c := range rep {
		d := c.Detail
		if r := []rune(d); len(r) > maxDetail {
			d = string(r[:maxDetail-3]) + "..."
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Status, c.Name, d)
		if c.Status != doctor.Pass && c.Fix != "" {
			fmt.Fprintf(tw, "  \t  fix:\t%s\n", c.Fix)
		}
	}
	tw.Flush()
}

// reportSummary counts a report's outcomes.
func reportSummary(rep doctor.Report) string {
	var pass, warn, fail int
	for _, c := range rep {
		switch c.Status {
		case doctor.Pass:
			pass++
		case doctor.Warn:
			warn++
		default:
			fail++
		}
	}
	return fmt.Sprintf("%d checks passed, %d warnings, %d failed", pass, warn, fail)
}
