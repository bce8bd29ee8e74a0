package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	ebpflink "github.com/cilium/ebpf/link"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Issue 14's benchmarks (README.md#performance), side by side in one lab
// with trafgen on the LAN client: the in-kernel anchor (nftables netdev
// `fwd`, startNftFor), drlb with AF_PACKET and drlb with AF_XDP. Every
// measurement is a few seconds; every frame stays in the lab (198.18.0.0/15).
// Run with -benchtime 1x; the figures are read, never asserted.

const (
	manyFlows  = 65536  // Flows65536: random UDP source ports
	cpuRate    = 30_000 // CPUCost: offered frames/s, below every forwarder's capacity
	cpuGap     = "33us" // CPUCostSmooth: trafgen's gap between frames (about 18k/s here)
	synConns   = 200    // SynFlood: new HTTP connections, one at a time
	synTimeout = 2 * time.Second
	synBudget  = 20 * time.Second // SynFlood: the client gives up after this (bounded run)
	synMaxConn = 4096             // SynFlood: drlb's max_conns
	// CPUCost: drlb-coalesce's -rx-coalesce
	benchCoalesce = 200 * time.Microsecond
	// CPUCost: each row's flood. /proc/stat counts in 10 ms ticks: over
	// benchDuration's 2 s window at cpuRate a tick was 0.17 µs per frame,
	// 10-15% of what a forwarder costs on a fast host; over 7 s, 0.05.
	cpuDuration = 8 * time.Second
)

// synFloodConf is a trafgen packet: a TCP SYN to VIP:80 from a random
// source in 198.18.128.0/17 (the lab's addresses are in 198.18.0.0/15)
// and a random port, at the director's MAC.
func synFloodConf(l *testbed.Lab) string {
	return fmt.Sprintf(`{
	eth(da=%s, sa=%s, type=0x0800),
	ipv4(saddr=198.18.128.0, saddr[2:2]=drnd(32768, 65535), daddr=%s, ttl=64, df),
	tcp(sport=drnd(1024, 65535), dport=%d, seq=drnd(), syn, window=64240)
}
`, l.Director.MAC, l.LANClient.MAC, l.VIP, testbed.HTTPPort)
}

// synFloodConf6 is synFloodConf for IPv6: a TCP SYN to VIP6:80 from a
// random source in 2001:2:0:8000::/64 (the lab's addresses are in
// 2001:2::/48) and a random port.
func synFloodConf6(l *testbed.Lab) string {
	return fmt.Sprintf(`{
	eth(da=%s, sa=%s, type=0x86dd),
	ipv6(saddr=2001:2:0:8000::, saddr[12:4]=drnd(), daddr=%s, hoplimit=64, nexthdr=6),
	tcp(sport=drnd(1024, 65535), dport=%d, seq=drnd(), syn, window=64240)
}
`, l.Director.MAC, l.LANClient.MAC, l.VIP6, testbed.HTTPPort)
}

// udpForwarders are the three forwarders of VIP:benchPort, each started
// by its function, which returns the one that stops it.
func udpForwarders(b *testing.B, l *testbed.Lab) []benchForwarder {
	return []benchForwarder{
		{"in-kernel", func() func() { return startNftForwarder(b, l) }},
		{"drlb", func() func() { return startDrlbForBench(b, l) }},
		{"drlb-1w", func() func() { return startDrlbForBench(b, l, "-workers", "1") }},
		{"drlb-afxdp", func() func() { return startDrlbForBench(b, l, "-io", "afxdp") }},
		// -kernel-flows: the kernel forwards established flows
		// itself. With AF_PACKET the tc program; with AF_XDP the XDP
		// program, in generic mode, since native XDP_TX on a veth is
		// dropped unless its peer takes it.
		{"afpacket-flows", func() func() { return startDrlbForBench(b, l, "-kernel-flows") }},
		{"afxdp-flows", func() func() {
			return startDrlbForBench(b, l, "-io", "afxdp", "-kernel-flows", "-xdp-generic")
		}},
		// The same in native mode, as on a NIC whose driver runs XDP:
		// a veth's XDP_TX frames are dropped unless its peer runs XDP
		// too, so the switch's end of the director's link gets a
		// program that passes everything.
		{"afxdp-flows-native", func() func() {
			detach := peerXDPPass(b, l)
			stop := startDrlbForBench(b, l, "-io", "afxdp", "-kernel-flows")
			return func() {
				stop()
				detach()
			}
		}},
	}
}

// peerXDPPass attaches an XDP program that passes every frame, in native
// mode, to the switch's end of the director's link, and returns what
// detaches it.
func peerXDPPass(b *testing.B, l *testbed.Lab) func() {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bench_pass", Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()}})
	if err != nil {
		b.Fatal(err)
	}
	var lk ebpflink.Link
	err = l.Do(l.Switch, func() error {
		ifi, err := net.InterfaceByName(l.Director.BridgePort)
		if err != nil {
			return err
		}
		lk, err = ebpflink.AttachXDP(ebpflink.XDPOptions{Program: prog, Interface: ifi.Index, Flags: ebpflink.XDPDriverMode})
		return err
	})
	if err != nil {
		prog.Close()
		b.Fatal(err)
	}
	detach := sync.OnceFunc(func() {
		lk.Close()
		prog.Close()
	})
	b.Cleanup(detach)
	return detach
}

// onlyForwarders keeps the forwarders DRLB_BENCH_ONLY names (a
// comma-separated list; unset: all), and the anchor, first and last: to
// profile one row (perf record -a) without the others.
func onlyForwarders(fwds []benchForwarder) []benchForwarder {
	return slices.DeleteFunc(fwds, func(f benchForwarder) bool { return !benchRowWanted(f.name) })
}

// benchRowWanted reports whether DRLB_BENCH_ONLY keeps the row of that
// name (the anchor's always).
func benchRowWanted(name string) bool {
	only := os.Getenv("DRLB_BENCH_ONLY")
	return only == "" || strings.HasPrefix(name, "in-kernel") || slices.Contains(strings.Split(only, ","), name)
}

// benchQueues is the director's receive queues in the bench's lab:
// DRLB_BENCH_QUEUES (unset: one), for the AF_XDP rows with a worker per
// queue (testbed.Options.DirectorQueues).
func benchQueues(b *testing.B) int {
	v := os.Getenv("DRLB_BENCH_QUEUES")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > testbed.MaxDirectorQueues {
		b.Fatalf("DRLB_BENCH_QUEUES=%q: want 1..%d", v, testbed.MaxDirectorQueues)
	}
	return n
}

// benchForwarder is a forwarder of the bench: its name and the function
// that starts it and returns the one that stops it.
type benchForwarder struct {
	name  string
	start func() func()
}

// reportBesideKernel reports each forwarder's figure of byName (keyed by
// udpForwarders' names) in unit, and each drlb's ratio to the in-kernel
// anchor's.
func reportBesideKernel(b *testing.B, byName map[string]float64, unit string) {
	reportBesideKernelAs(b, byName, unit, "/kernel")
}

// reportBesideKernelAs is reportBesideKernel with the ratios' unit
// suffix: a second figure of one run must not overwrite the first's.
func reportBesideKernelAs(b *testing.B, byName map[string]float64, unit, ratio string) {
	short := []struct{ name, metric string }{{"in-kernel", "kernel"}, {"drlb", "drlb"}, {"drlb-1w", "drlb1w"}, {"drlb-afxdp", "afxdp"}, {"drlb-coalesce", "coalesce"}, {"afxdp-coalesce", "afxdpcoalesce"}, {"drlb-keep-copy", "keepcopy"}, {"afpacket-flows", "afpacketflows"}, {"afxdp-flows", "afxdpflows"}, {"afxdp-flows-native", "afxdpflowsnative"}, {"afxdp-generic", "afxdpgeneric"}}
	k := byName["in-kernel"]
	for _, f := range short {
		v, ok := byName[f.name]
		if !ok { // a row this measurement does not have
			continue
		}
		b.ReportMetric(v, f.metric+"-"+unit)
		if k > 0 && f.name != "in-kernel" {
			b.ReportMetric(v/k, f.metric+ratio)
		}
	}
}

// BenchmarkFastPath is issue 14's measurements, each a sub-benchmark:
//
//	go test -run '^$' -bench FastPath -benchtime 1x -count 2 ./e2e/
func BenchmarkFastPath(b *testing.B) {
	testutil.NeedRoot(b)
	tg, err := exec.LookPath("trafgen")
	if err != nil {
		b.Skip("trafgen not installed (apt-get install netsniff-ng)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// What changes the measurement, in the output with the figures.
	for _, v := range []string{"DRLB_BENCH_ONLY", "DRLB_BENCH_QUEUES", "DRLB_BENCH_CPUPROFILE"} {
		if s := os.Getenv(v); s != "" {
			b.Logf("%s=%s: rows, queues or profiling differ from a plain run", v, s)
		}
	}
	l, err := testbed.New(ctx, testbed.Options{RealServers: 3, LANClient: true, DirectorQueues: benchQueues(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() }) // after the rows' cleanups (bench_linux_test.go)
	if err := l.StartServices(ctx); err != nil {
		b.Fatal(err)
	}

	// Forwarding rate at trafgen's top rate, 65536 flows: from one client
	// (random source ports: every frame of it reaches one worker, since
	// workers share clients by address), then from 32768 clients with two
	// source ports each (random ports made it about 2^31 flows, nearly
	// every frame a new connection).
	for _, flood := range []struct{ name, conf string }{
		{"Flows65536", udpFlood(l, "drnd()")},
		{"Flows65536Clients", udpFloodFrom(l, "198.18.128.0, saddr[2:2]=drnd(32768, 65535)", "drnd(40000, 40001)")},
	} {
		b.Run(flood.name, func(b *testing.B) {
			ceiling := generatorCeiling(b, l, tg, flood.conf)
			rates := map[string]float64{}
			fwds := udpForwarders(b, l)
			// The anchor again at the end, as in CPUCost: the machine
			// drifts over the rows, and the ratios are to the mean.
			fwds = append(fwds, benchForwarder{"in-kernel-again", fwds[0].start})
			for _, f := range onlyForwarders(fwds) {
				stop := f.start()
				r := trafgenBlast(b, l, tg, flood.conf, 2*manyFlows)
				stop()
				mustForward(b, f.name, r)
				rates[f.name] = r.rate()
				b.Logf("%-10s %8.0f frames/s reached the real servers (offered %.0f/s; %s)", f.name, r.rate(), r.offeredRate(), r.cores)
			}
			b.ReportMetric(rates["in-kernel"], "kernel-first-fps")
			b.ReportMetric(rates["in-kernel-again"], "kernel-last-fps")
			rates["in-kernel"] = (rates["in-kernel"] + rates["in-kernel-again"]) / 2
			reportBesideKernel(b, rates, "fps")
			if k := rates["in-kernel"]; k > 0 {
				b.ReportMetric(ceiling/k, "ceiling/kernel")
				b.Logf("no forwarder can read more than %.2fx the anchor in this run: the generator's ceiling %.0f frames/s over the anchor's %.0f", ceiling/k, ceiling, k)
			}
		})
	}

	// Busy CPU per forwarded frame at cpuRate (trafgen --rate, which
	// sends in bursts: drlb reads full batches) and with one frame every
	// cpuGap (--gap: a smooth stream, a wake-up per frame unless
	// -rx-coalesce groups them). "idle" is the generator alone, nothing
	// forwarding (the director's kernel drops the frames): the part of
	// each figure that is not the forwarder's.
	for _, pace := range []struct{ name, flag, value string }{
		{"CPUCost", "--rate", fmt.Sprintf("%dpps", cpuRate)},
		{"CPUCostSmooth", "--gap", cpuGap},
	} {
		b.Run(pace.name, func(b *testing.B) { cpuCost(b, l, tg, pace.flag, pace.value) })
	}

	// A spoofed SYN flood at trafgen's top rate toward VIP:80 while the
	// routed client makes synConns new HTTP connections, one at a time.
	b.Run("SynFlood", func(b *testing.B) {
		// The router reaches the VIP at the director's MAC, as drlb's ARP
		// answer would tell it; the in-kernel anchor answers no ARP.
		nh, lk := lanLink(b, l.Router)
		neigh := &netlink.Neigh{LinkIndex: lk.Attrs().Index, State: netlink.NUD_PERMANENT,
			IP: l.VIP.AsSlice(), HardwareAddr: l.Director.MAC}
		if err := nh.NeighSet(neigh); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = nh.NeighDel(neigh) }()
		conf := writeTrafgenConf(b, synFloodConf(l))
		// drlb-paced: drlb under the flood rate the anchor let trafgen
		// reach (the anchor forwards in trafgen's softirq, which slows
		// trafgen; drlb's work, the real servers' included, lands on
		// the other core), to tell the table's defence from capacity.
		var kernelRate float64
		// drlb-strangers: each new connection comes from an address
		// never seen before (not in the trusted lane): its SYN queues
		// with the flood's.
		strangers := addClientAddrs(b, l, synConns)
		// drlb-strangers-paced: strangers under the anchor's flood rate,
		// the same offered load the anchor served.
		// drlb-afxdp-xdpsyn-strangers: -kernel-syns with AF_XDP, the XDP
		// program forwards bare SYNs itself under pressure (in generic
		// mode here); drlb-kernelsyn-strangers the same with AF_PACKET
		// (the socket filters leave them to the tc program);
		// drlb-kernelsyn6-strangers the same over IPv6 (an IPv6 flood,
		// never-seen IPv6 clients).
		strangers6 := addClientAddrsOf(b, l, synConns, true)
		conf6 := writeTrafgenConf(b, synFloodConf6(l))
		for _, mode := range []string{"in-kernel", "drlb", "drlb-strangers", "drlb-paced", "drlb-strangers-paced", "drlb-kernelsyn-strangers", "drlb-kernelsyn6-strangers", "drlb-afxdp", "drlb-afxdp-strangers", "drlb-afxdp-xdpsyn-strangers"} {
			if !benchRowWanted(mode) {
				continue
			}
			var sock string
			var stop func()
			var args []string
			switch mode {
			case "in-kernel":
				stop = startNftFor(b, l, "tcp", testbed.HTTPPort)
			case "drlb-afxdp", "drlb-afxdp-strangers", "drlb-afxdp-xdpsyn-strangers":
				// XDP frames carry no partial-checksum state: the router
				// completes its checksums, as frames off a wire are
				// (TestAFXDP).
				if err := l.Do(l.Router, func() error { return ethtool.Set(l.Router.Iface, ethtool.TxChecksum, false) }); err != nil {
					b.Fatal(err)
				}
				args := []string{"-io", "afxdp"}
				if strings.Contains(mode, "xdpsyn") {
					// Generic mode: native XDP_TX on a veth whose peer
					// has no XDP program is dropped.
					args = append(args, "-kernel-syns", "-xdp-generic")
				}
				sock, stop = startDrlbWith(b, l, fmt.Sprintf("max_conns: %d\n", synMaxConn)+benchService(l, "tcp", testbed.HTTPPort, "rr"), args...)
				defer func() {
					_ = l.Do(l.Router, func() error { return ethtool.Set(l.Router.Iface, ethtool.TxChecksum, true) })
				}()
			default:
				var drlbArgs []string
				cfg := fmt.Sprintf("max_conns: %d\n", synMaxConn) + benchService(l, "tcp", testbed.HTTPPort, "rr")
				if strings.HasPrefix(mode, "drlb-kernelsyn") {
					drlbArgs = []string{"-kernel-syns"}
				}
				if mode == "drlb-kernelsyn6-strangers" {
					cfg += benchService6(l, testbed.HTTPPort)
				}
				sock, stop = startDrlbWith(b, l, cfg, drlbArgs...)
			}
			if mode == "drlb-paced" || mode == "drlb-strangers-paced" {
				args = []string{"--rate", fmt.Sprintf("%.0fpps", kernelRate)}
			}
			var from []netip.Addr
			if strings.Contains(mode, "strangers") {
				// The same addresses in each such mode: every drlb
				// starts with an empty trusted map.
				from = strangers
			}
			flood := conf
			if mode == "drlb-kernelsyn6-strangers" {
				from, flood = strangers6, conf6
			}
			served, lat, tried, floodRate := synFloodRun(b, l, tg, flood, from, args...)
			if mode == "in-kernel" {
				kernelRate = floodRate
			}
			p := func(q float64) time.Duration {
				if len(lat) == 0 {
					return 0
				}
				return lat[min(len(lat)-1, int(q*float64(len(lat))))]
			}
			b.Logf("%-10s served %d of %d new connections (%d tried) under %.0f SYN/s; every try (a failure at its timeout): p50 %v, p99 %v, max %v",
				mode, served, synConns, tried, floodRate, p(0.5).Round(time.Microsecond), p(0.99).Round(time.Microsecond), p(1).Round(time.Microsecond))
			name := map[string]string{"in-kernel": "kernel", "drlb": "drlb", "drlb-strangers": "strangers", "drlb-paced": "paced",
				"drlb-strangers-paced": "strangers-paced", "drlb-afxdp": "afxdp", "drlb-afxdp-strangers": "afxdp-strangers",
				"drlb-afxdp-xdpsyn-strangers": "xdpsyn-strangers", "drlb-kernelsyn-strangers": "kernelsyn-strangers",
				"drlb-kernelsyn6-strangers": "kernelsyn6-strangers"}[mode]
			b.ReportMetric(float64(served), name+"-served")
			b.ReportMetric(float64(tried), name+"-tried") // one at a time, 2 s each, within the budget
			b.ReportMetric(float64(p(0.99).Microseconds())/1000, name+"-p99-ms")
			b.ReportMetric(floodRate/1000, name+"-kSYN/s") // the log lines may be cut
			if sock != "" {
				c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				s, err := control.Get(c, sock, false)
				cancel()
				if err != nil {
					b.Errorf("drlb ctl: %v", err)
				} else {
					if o := s.Overload; o != nil {
						b.Logf("drlb overload: pressure %v, pressure episodes %d, SYNs without entry %d, SYN_RECV evicted %d", o.Pressure, o.PressureEpisodes, o.SynStateless, o.SynEvicted)
						b.ReportMetric(float64(o.SynEvicted), "drlb-syn-evicted")
					}
					var seen uint64
					for _, n := range s.Frames {
						seen += n
					}
					// rx: the main sockets' drops (ACKs, requests,
					// established traffic); rx_syn: the SYN sockets' (bare
					// SYNs only).
					dropped := s.Link["rx"] + s.Link["rx_syn"]
					b.Logf("drlb frames by reason: %v; link drops: %v (%.0f%% of the frames that reached the sockets; %d of them not bare SYNs)",
						s.Frames, s.Link, 100*float64(dropped)/float64(max(seen+dropped, 1)), s.Link["rx"])
					b.ReportMetric(float64(s.Link["rx"]), name+"-rx-drops")
					b.ReportMetric(float64(s.Link["rx_syn"]), name+"-rx-syn-drops")
				}
			}
			stop()
		}
	})

	// Loss for drlb at 50, 80 and 100% of the in-kernel anchor's top
	// rate, measured first in the same run: with its defaults (AF_PACKET),
	// AF_XDP, and both with kernel flows (DRLB_BENCH_ONLY picks among
	// them). Metrics loss50-% ... for the defaults, as before, and
	// afxdp-loss50-% ... for the others.
	b.Run("Loss", func(b *testing.B) {
		conf := udpFlood(l, benchPorts())
		stop := startNftForwarder(b, l)
		top := trafgenBlast(b, l, tg, conf, 4*benchFlows)
		stop()
		b.Logf("%-14s %8.0f frames/s reached the real servers (offered %.0f/s)", "in-kernel", top.rate(), top.offeredRate())
		b.ReportMetric(top.rate(), "kernel-fps")
		for _, f := range lossForwarders(b, l) {
			stop := f.start()
			for _, pct := range []int{50, 80, 100} {
				// Paced by a tbf qdisc, not trafgen's --rate: its paced
				// mode has a top rate of its own, about half the
				// anchor's on a fast day (~230k/s where the anchor
				// forwarded 458k), so every row offered about the same.
				unshape := shapeLAN(b, l, top.rate()*float64(pct)/100)
				r := trafgenBlast(b, l, tg, conf, 4*benchFlows, "--qdisc-path")
				unshape()
				loss := 0.0
				if r.sent > 0 { // the whole flood, queues drained
					loss = 100 * (1 - float64(r.received)/float64(r.sent))
				}
				// Say what was offered, not just asked.
				got := 100 * r.offeredRate() / max(top.rate(), 1)
				b.Logf("%-14s at %3d%%: offered %8.0f/s (%3.0f%% of the anchor's), delivered %8.0f/s, loss %.1f%%",
					f.name, pct, r.offeredRate(), got, r.rate(), loss)
				if got < 0.9*float64(pct) {
					b.Logf("%-14s trafgen offered %.0f%% of the anchor's rate where %d%% was asked: the row measures that", f.name, got, pct)
				}
				b.ReportMetric(loss, fmt.Sprintf("%sloss%d-%%", f.metric, pct))
				b.ReportMetric(got, fmt.Sprintf("%soffered%d-%%", f.metric, pct))
			}
			stop()
		}
	})
}

// udpFloodLen is the length of udpFlood's frames as the LAN client's
// qdisc counts them: 60 bytes, no FCS.
const udpFloodLen = 60

// shapeLAN paces the LAN client's frames at pps (udpFlood's) with a tbf
// qdisc on its interface, which trafgen --qdisc-path sends through; the
// func it returns removes it. Frames beyond the rate are dropped in the
// qdisc (trafgen carries on past the ENOBUFS that says so) and never
// reach the wire, so the interface's transmit counter, the offered
// count, is the paced rate. The queue holds 128 frames at most: fewer
// than trafgen's socket send buffer holds, which would make it wait
// (EAGAIN, on which it gives up) instead.
func shapeLAN(b *testing.B, l *testbed.Lab, pps float64) func() {
	b.Helper()
	nh, lk := lanLink(b, l.LANClient)
	rate := uint64(pps * udpFloodLen)
	burst := uint32(max(rate/200, 16*udpFloodLen)) // 5 ms of frames
	q := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: lk.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       rate, Limit: 128 * udpFloodLen, Buffer: netlink.Xmittime(rate, burst),
	}
	if err := nh.QdiscAdd(q); err != nil {
		b.Fatalf("tbf on the LAN client: %v", err)
	}
	return func() {
		if err := nh.QdiscDel(q); err != nil {
			b.Errorf("tbf on the LAN client: %v", err)
		}
	}
}

// lossForwarder is a drlb row of the Loss measurement and its metrics'
// prefix.
type lossForwarder struct {
	benchForwarder
	metric string
}

// lossForwarders are the drlb rows of the Loss measurement, as
// DRLB_BENCH_ONLY keeps them.
func lossForwarders(b *testing.B, l *testbed.Lab) []lossForwarder {
	prefix := map[string]string{"drlb": "", "drlb-afxdp": "afxdp-", "afpacket-flows": "afpacketflows-", "afxdp-flows": "afxdpflows-", "afxdp-flows-native": "afxdpflowsnative-"}
	var out []lossForwarder
	for _, f := range onlyForwarders(udpForwarders(b, l)) {
		if m, ok := prefix[f.name]; ok {
			out = append(out, lossForwarder{f, m})
		}
	}
	return out
}

// synFloodRun floods with the trafgen configuration at path from the LAN
// client while the routed client makes synConns new connections to VIP:80
// (synTimeout each, synBudget in all), with more trafgen args (--rate),
// and returns how many were served,
// every try's latency, a failure's its timeout (sorted), how many were
// tried and the flood's rate.
// Before the flood the client connects once from its own address, which
// puts it in drlb's trusted lane; with from, connection i comes from
// from[i] instead, an address drlb has never seen.
func synFloodRun(b *testing.B, l *testbed.Lab, tg, path string, from []netip.Addr, args ...string) (served int, lat []time.Duration, tried int, floodRate float64) {
	c, stop := context.WithTimeout(context.Background(), synTimeout)
	_, err := askNew(c, l, l.VIP)
	stop()
	if err != nil {
		b.Fatalf("before the flood, a new connection to the VIP: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	floodErr := make(chan error, 1)
	var restarts atomic.Int32 // read once floodErr has its value
	go func() {
		deadline := time.Now().Add(synBudget + 5*time.Second)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				floodErr <- nil // stalled at the end: the flood has run its time
				return
			}
			// Bounded in count as well as time (1M frames/s is above
			// trafgen's top rate here): trafgen sends in a process
			// group of its own, which a killed test binary leaves behind.
			_, err := runTrafgen(ctx, l, tg, path, 1_000_000*int(left.Seconds()+1), left, args...)
			if !errors.Is(err, errTrafgenStalled) || restarts.Load() == 10 || ctx.Err() != nil {
				floodErr <- err
				return
			}
			restarts.Add(1)
		}
	}()
	// trafgen starts and the flood fills the table. A paced trafgen can
	// take a while to send (and the client's 200 connections may last
	// under a second once served): wait until the flood runs, up to 5 s.
	time.Sleep(500 * time.Millisecond)
	for wait := time.Now(); time.Since(wait) < 5*time.Second; {
		n := txPackets(b, l.LANClient)
		time.Sleep(100 * time.Millisecond)
		if txPackets(b, l.LANClient)-n >= 1000 { // 10k frames/s at least
			break
		}
	}
	sent := txPackets(b, l.LANClient)
	start := time.Now()
	for tried < synConns && time.Since(start) < synBudget {
		tried++
		c, stop := context.WithTimeout(context.Background(), synTimeout)
		t0 := time.Now()
		var err error
		if from != nil {
			vip := l.VIP
			if from[tried-1].Is6() {
				vip = l.VIP6
			}
			_, err = askNewFrom(c, l, from[tried-1], vip)
		} else {
			_, err = askNew(c, l, l.VIP)
		}
		d := time.Since(t0)
		stop()
		// Every try counts, a failure with the time it took (its
		// timeout): percentiles over the served alone hid the worst
		// outcomes of the rows that lost some.
		lat = append(lat, d)
		if err == nil {
			served++
		} else if tried-served == 1 {
			b.Logf("first failed connection: %v", err)
		}
	}
	// The flood's rate over the connections, and over 2 s at least: a
	// short window would measure a paced trafgen's bursts, not its rate.
	if d := 2*time.Second - time.Since(start); d > 0 {
		time.Sleep(d)
	}
	floodRate = float64(txPackets(b, l.LANClient)-sent) / time.Since(start).Seconds()
	cancel()
	if err := <-floodErr; err != nil {
		b.Fatal(err)
	}
	if n := restarts.Load(); n > 0 {
		b.Logf("the flood was restarted %d times (%v)", n, errTrafgenStalled)
	}
	slices.Sort(lat)
	return served, lat, tried, floodRate
}

// addClientAddrs puts n more addresses on the routed client's link
// (198.18.1.30 on, in its /24, which the router reaches there) and returns
// them.
func addClientAddrs(b testing.TB, l *testbed.Lab, n int) []netip.Addr {
	return addClientAddrsOf(b, l, n, false)
}

// addClientAddrsOf is addClientAddrs for IPv4, or with v6 for IPv6
// (2001:2:0:1::30 on, in the client's /64; no duplicate address
// detection, so they can be used at once).
func addClientAddrsOf(b testing.TB, l *testbed.Lab, n int, v6 bool) []netip.Addr {
	if n > 220 {
		b.Fatalf("%d client addresses: the client's /24 holds 220 more", n)
	}
	var addrs []netip.Addr
	err := l.Do(l.Client, func() error {
		lk, err := netlink.LinkByName(l.Client.Iface)
		if err != nil {
			return err
		}
		for i := range n {
			a := netip.AddrFrom4([4]byte{198, 18, 1, byte(30 + i)})
			na := &netlink.Addr{IPNet: netlink.NewIPNet(a.AsSlice())}
			if v6 {
				a = netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 1, 14: byte((0x30 + i) >> 8), 15: byte(0x30 + i)})
				na = &netlink.Addr{IPNet: netlink.NewIPNet(a.AsSlice()), Flags: unix.IFA_F_NODAD}
			}
			if err := netlink.AddrAdd(lk, na); err != nil && !errors.Is(err, unix.EEXIST) {
				return err
			}
			addrs = append(addrs, a)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return addrs
}

// cpuCost measures busy CPU per forwarded frame for each forwarder, with
// trafgen paced by flag (--rate or --gap) value, beside the generator
// alone ("idle"); drlb-coalesce is drlb with -rx-coalesce benchCoalesce.
func cpuCost(b *testing.B, l *testbed.Lab, tg, flag, value string) {
	conf := udpFlood(l, benchPorts())
	idle := trafgenBlastFor(b, l, tg, conf, 4*benchFlows, cpuDuration, flag, value)
	b.Logf("%-10s busy %5.1f µs per offered frame (offered %.0f/s, delivered %.0f/s)", "idle", idle.busyPer(idle.offered), idle.offeredRate(), idle.rate())
	b.ReportMetric(idle.busyPer(idle.offered), "idle-µs/frame")
	cost := map[string]float64{}
	fwds := append(udpForwarders(b, l), benchForwarder{"drlb-keep-copy", func() func() {
		// The kernel's copy of each VIP frame goes up its IP stack, as
		// before the tc drop (link.VIPDrop).
		return startDrlbForBench(b, l, "-keep-kernel-copy")
	}}, benchForwarder{"drlb-coalesce", func() func() {
		return startDrlbForBench(b, l, "-rx-coalesce", benchCoalesce.String())
	}}, benchForwarder{"afxdp-generic", func() func() {
		// AF_XDP with the program in generic mode, as afxdp-flows: the
		// part of afxdp-flows' figure that is generic mode's.
		return startDrlbForBench(b, l, "-io", "afxdp", "-xdp-generic")
	}}, benchForwarder{"afxdp-coalesce", func() func() {
		return startDrlbForBench(b, l, "-io", "afxdp", "-rx-coalesce", benchCoalesce.String())
	}})
	// The anchor again at the end: the machine drifts over the minute the
	// rows take, and the ratios are to the mean of the two.
	fwds = append(fwds, benchForwarder{"in-kernel-again", fwds[0].start})
	fwds = onlyForwarders(fwds)
	for _, f := range fwds {
		stop := f.start()
		r := trafgenBlastFor(b, l, tg, conf, 4*benchFlows, cpuDuration, flag, value)
		stop()
		mustForward(b, f.name, r)
		cost[f.name] = r.busyPer(r.delivered)
		b.Logf("%-13s busy %5.1f µs per forwarded frame, %5.1f above idle (offered %.0f/s, delivered %.0f/s)",
			f.name, cost[f.name], cost[f.name]-idle.busyPer(idle.offered), r.offeredRate(), r.rate())
	}
	b.ReportMetric(cost["in-kernel"], "kernel-first-µs/frame")
	b.ReportMetric(cost["in-kernel-again"], "kernel-last-µs/frame")
	cost["in-kernel"] = (cost["in-kernel"] + cost["in-kernel-again"]) / 2
	reportBesideKernel(b, cost, "µs/frame")
	// The same above idle (the generator alone): the whole machine's
	// figure above holds the generator's share too, which pulls every
	// ratio towards 1; this one is the forwarders' own.
	own := map[string]float64{}
	for name, v := range cost {
		own[name] = max(v-idle.busyPer(idle.offered), 0)
	}
	for name, v := range own {
		if k := own["in-kernel"]; k > 0 && name != "in-kernel" && name != "in-kernel-again" {
			b.Logf("%-13s %5.1f µs per frame above idle, %.2fx the anchor's %.1f", name, v, v/k, k)
		}
	}
	reportBesideKernelAs(b, own, "own-µs/frame", "-own/kernel")
}

// generatorCeiling is the rate trafgen reaches with the flood conf when
// the director drops its frames at netdev ingress: on veth the bridge and
// the director's receive run on the generator's core, so this is the
// most any forwarder here can be shown to carry, and ceiling / anchor the
// largest ratio to the anchor this run can measure. Reported as
// ceiling-fps.
func generatorCeiling(b *testing.B, l *testbed.Lab, tg, conf string) float64 {
	stop := startNftDrop(b, l)
	r := trafgenBlast(b, l, tg, conf, 2*manyFlows)
	stop()
	c := r.offeredRate()
	b.ReportMetric(c, "ceiling-fps")
	b.Logf("%-10s %8.0f frames/s offered into a drop at the director's ingress (%s)", "ceiling", c, r.cores)
	return c
}

// mustForward fails a row whose forwarder delivered nothing (it did not
// start, or died): its rate would read 0 and its CPU cost per frame 0,
// the best figure of all.
func mustForward(b *testing.B, name string, r blastResult) {
	b.Helper()
	if r.delivered == 0 {
		b.Fatalf("%s delivered no frame in the measured window (offered %d): did it start?", name, r.offered)
	}
}
