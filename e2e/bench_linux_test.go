package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/testbed"
	"golang.org/x/net/bpf"
)

// Forwarding-rate benchmark (ARCHITECTURE.md#performance): a generator on the LAN
// blasts 64-byte UDP frames at the VIP; what reaches the real servers per
// second is the director's forwarding rate. drlb and an in-kernel
// forwarder (nftables netdev ingress, `ether daddr set jhash ... fwd`) are
// measured side by side in the same lab, so the ratio is what counts.

const (
	benchFlows    = 256
	benchDuration = 3 * time.Second
	benchMaxSent  = 5_000_000 // bound on frames per measurement
	benchPort     = 9         // discard: no listener, the frames are only counted
)

func BenchmarkForwardingRate(b *testing.B) {
	testutil.NeedRoot(b)
	l, err := testbed.New(context.Background(), testbed.Options{RealServers: 3, LANClient: true})
	if err != nil {
		b.Fatal(err)
	}
	// Closed after the rows' own cleanups (a cleanup, not a defer:
	// cleanups run last in, first out, and after defers).
	b.Cleanup(func() { l.Close() })

	rates := map[string]float64{}
	for _, mode := range []string{"in-kernel", "drlb", "drlb-bypass", "drlb-afxdp"} {
		var stop func()
		switch mode {
		case "in-kernel":
			stop = startNftForwarder(b, l)
		case "drlb":
			stop = startDrlbForBench(b, l)
		case "drlb-bypass":
			stop = startDrlbForBench(b, l, "-qdisc-bypass")
		case "drlb-afxdp":
			stop = startDrlbForBench(b, l, "-io", "afxdp")
		}
		rate, sent := blast(b, l)
		stop()
		rates[mode] = rate
		if sent >= 0 {
			b.Logf("%-11s %8.0f frames/s reached the real servers (Go generator sent %d in %v)", mode, rate, sent, benchDuration)
		} else {
			b.Logf("%-11s %8.0f frames/s reached the real servers (trafgen, %v)", mode, rate, benchDuration)
		}
	}
	b.ReportMetric(rates["in-kernel"], "kernel-fps")
	b.ReportMetric(rates["drlb"], "drlb-fps")
	b.ReportMetric(rates["drlb-bypass"], "bypass-fps")
	b.ReportMetric(rates["drlb-afxdp"], "afxdp-fps")
	if rates["in-kernel"] > 0 {
		b.ReportMetric(rates["drlb"]/rates["in-kernel"], "drlb/kernel")
		b.ReportMetric(rates["drlb-bypass"]/rates["in-kernel"], "bypass/kernel")
		b.ReportMetric(rates["drlb-afxdp"]/rates["in-kernel"], "afxdp/kernel")
	}
}

// startDrlbForBench runs drlb with a UDP service on the discard port.
func startDrlbForBench(b *testing.B, l *testbed.Lab, extra ...string) func() {
	sock, stop := startDrlbWith(b, l, benchService(l, "udp", benchPort, "sh"), extra...)
	return func() {
		logDrlbCounters(b, sock, extra)
		stop()
	}
}

// logDrlbCounters logs what drlb counted (frames by reason, link drops):
// where the frames a run lost went missing.
func logDrlbCounters(b *testing.B, sock string, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := control.Get(ctx, sock, false)
	if err != nil {
		b.Logf("drlb %v: ctl: %v", args, err)
		return
	}
	b.Logf("drlb %v: frames %v (kernel-forwarded %d of them), link drops %v", args, s.Frames, s.KernelForwarded, s.Link)
}

// benchService is drlb's YAML for one service on the VIP with every real
// server, with the interface line.
func benchService(l *testbed.Lab, proto string, port int, sched string) string {
	return serviceConfig(l, proto, port, sched, "")
}

// serviceConfig is drlb's YAML for one service on the VIP with every real
// server and the interface line; extra adds service keys ("persistence:
// 300s, ").
func serviceConfig(l *testbed.Lab, proto string, port int, sched, extra string) string {
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "interface: %s\nservices:\n  - {vip: %q, port: %d, protocol: %s, scheduler: %s, %srealservers: [%s]}\n",
		l.Director.Iface, l.VIP, port, proto, sched, extra, realServersFlow(l, false))
	return cfg.String()
}

// realServersFlow is every real server as YAML flow items, by its IPv4
// address or, with v6, its IPv6 one.
func realServersFlow(l *testbed.Lab, v6 bool) string {
	var b strings.Builder
	for i, rs := range l.RealServers {
		if i > 0 {
			b.WriteString(", ")
		}
		addr := rs.IPv4
		if v6 {
			addr = rs.IPv6
		}
		fmt.Fprintf(&b, "{address: %q}", addr)
	}
	return b.String()
}

// benchService6 is one more TCP service, rr, on the IPv6 VIP at port,
// with every real server's IPv6 address, to append to serviceConfig's.
func benchService6(l *testbed.Lab, port int) string {
	return fmt.Sprintf("  - {vip: %q, port: %d, protocol: tcp, scheduler: rr, realservers: [%s]}\n", l.VIP6, port, realServersFlow(l, true))
}

// startDrlbWith runs drlb with the config text cfg in the director's
// namespace, its control socket in a temporary directory (returned, for
// control.Get), and returns a function that stops it.
func startDrlbWith(b *testing.B, l *testbed.Lab, cfg string, extra ...string) (sock string, stop func()) {
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	sock = filepath.Join(dir, "ctl.sock")
	args := append([]string{"run", "-c", path, "-log-level", "warn", "-ctl", sock}, extra...)
	if prof := os.Getenv("DRLB_BENCH_CPUPROFILE"); prof != "" {
		args = append(args, "-cpuprofile", prof)
	}
	cmd := exec.Command(drlbBinary, args...)
	logs := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := l.Do(l.Director, cmd.Start); err != nil {
		b.Fatal(err)
	}
	// Wait until every real server's MAC is known: one probe datagram
	// per flow reaches a real server only then.
	time.Sleep(500 * time.Millisecond)
	// Stopped at the end of b too: a row that fails halfway must not
	// leave its director on the interface for the rows after it.
	stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(os.Interrupt) // a clean stop writes the profile
		// Bounded: a drlb that does not stop is killed, and said so.
		killer := time.AfterFunc(10*time.Second, func() {
			b.Errorf("drlb did not stop within 10s of SIGINT; killed")
			_ = cmd.Process.Kill()
		})
		_ = cmd.Wait()
		killer.Stop()
		if strings.Contains(logs.String(), "level=ERROR") {
			b.Logf("drlb: %s", logs.String())
		}
	})
	b.Cleanup(stop)
	return sock, stop
}

// startNftForwarder installs the in-kernel equivalent in the director's
// namespace: at netdev ingress, VIP frames get a real server's MAC by a
// flow hash and are sent straight back out.
func startNftForwarder(b *testing.B, l *testbed.Lab) func() {
	return startNftFor(b, l, "udp", benchPort)
}

// startNftFor is startNftForwarder for VIP:port over proto (udp, tcp),
// the real server picked by a hash of the client's address and port.
func startNftFor(b *testing.B, l *testbed.Lab, proto string, port int) func() {
	var m []string
	for i, rs := range l.RealServers {
		m = append(m, fmt.Sprintf("%d : %s", i, rs.MAC))
	}
	return startNftIngress(b, l, fmt.Sprintf("ip daddr %s %s dport %d ether saddr set %s ether daddr set jhash ip saddr . %s sport mod %d map { %s } fwd to %s",
		l.VIP, proto, port, l.Director.MAC, proto, len(l.RealServers), strings.Join(m, ", "), l.Director.Iface))
}

// startNftDrop drops VIP:benchPort's UDP frames at the director's netdev
// ingress: a forwarder that costs the generator's core nothing past the
// director's ingress, for the lab's ceiling (generatorCeiling).
func startNftDrop(b *testing.B, l *testbed.Lab) func() {
	return startNftIngress(b, l, fmt.Sprintf("ip daddr %s udp dport %d drop", l.VIP, benchPort))
}

// startNftIngress installs rule in a netdev ingress chain on the
// director's LAN interface, and returns what removes it (also run at the
// end of b).
func startNftIngress(b *testing.B, l *testbed.Lab, rule string) func() {
	nft, err := exec.LookPath("nft")
	if err != nil {
		b.Skip("nft not installed (apt-get install nftables): no in-kernel baseline")
	}
	rules := fmt.Sprintf(`table netdev drlbbench {
	chain ingress {
		type filter hook ingress device %s priority 0;
		%s
	}
}
`, l.Director.Iface, rule)
	run := func(args ...string) error {
		return l.Do(l.Director, func() error {
			cmd := exec.Command(nft, args...)
			if args[0] == "-f" {
				cmd.Stdin = strings.NewReader(rules)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("nft %v: %v: %s", args, err, out)
			}
			return nil
		})
	}
	if err := run("-f", "-"); err != nil {
		b.Fatal(err)
	}
	// The router must know the VIP for nothing; the generator addresses
	// the director's MAC directly, as a router that resolved the VIP would.
	// Stopped at the end of b too, as startDrlbWith's; an error is
	// reported, not fatal: FailNow inside a OnceFunc would panic.
	stop := sync.OnceFunc(func() {
		if err := run("delete", "table", "netdev", "drlbbench"); err != nil && !errors.Is(err, testbed.ErrClosed) {
			b.Errorf("removing the in-kernel rule: %v", err)
		}
	})
	b.Cleanup(stop)
	return stop
}

// blast sends 64-byte UDP frames from the LAN client to the VIP (at the
// director's MAC) for benchDuration and returns the rate at which frames
// reached the real servers. It uses trafgen (netsniff-ng, as the measurements
// in ARCHITECTURE.md#performance did: it spends far less CPU than a Go loop,
// which matters on 2 cores shared with the director) when installed, else a
// Go generator.
func blast(b *testing.B, l *testbed.Lab) (float64, int) {
	if tg, err := exec.LookPath("trafgen"); err == nil && os.Getenv("DRLB_BENCH_GEN") != "go" {
		return blastTrafgen(b, l, tg)
	}
	return blastGo(b, l)
}

// blastTrafgen runs trafgen in the LAN client's namespace on one CPU.
func blastTrafgen(b *testing.B, l *testbed.Lab, trafgen string) (float64, int) {
	return trafgenBlast(b, l, trafgen, udpFlood(l, benchPorts()), 4*benchFlows).rate(), -1
}

// benchPorts is the trafgen source-port field of blast's benchFlows flows.
func benchPorts() string { return fmt.Sprintf("dinc(10000, %d)", 10000+benchFlows-1) }

// udpFlood is blast's trafgen packet: a 64-byte UDP frame (60 bytes + FCS)
// from the LAN client to VIP:benchPort, at the director's MAC. sport is
// the source port's trafgen field value: dinc(...) for a fixed set of
// flows, drnd() for random ones.
func udpFlood(l *testbed.Lab, sport string) string {
	return udpFloodFrom(l, l.LANClient.IPv4.String(), sport)
}

// udpFloodFrom is udpFlood from the trafgen source address expression
// saddr (e.g. random addresses in the lab's 198.18.128.0/17).
func udpFloodFrom(l *testbed.Lab, saddr, sport string) string {
	return fmt.Sprintf(`{
	eth(da=%s, sa=%s, type=0x0800),
	ipv4(saddr=%s, daddr=%s, ttl=64, df),
	udp(sport=%s, dport=%d),
	fill(0x00, 18)
}
`, l.Director.MAC, l.LANClient.MAC, saddr, l.VIP, sport, benchPort)
}

// blastResult is one flood: its steady window, and the whole of it.
//
// Rates and CPU cost come from a window inside the flood (steadyFrom
// after it starts to steadyFrom before it ends): counting to the end of
// the drain after the generator stops credited a forwarder with a queue
// (drlb's 32768-frame AF_XDP ring, its 32 MiB socket buffer) with frames
// it forwarded after the generator's clock stopped, about 3% at top
// rate, where the anchor, forwarding as frames arrive, has nothing to
// drain. Loss compares the whole flood's frames, queues drained.
type blastResult struct {
	elapsed   time.Duration // the steady window
	offered   uint64        // frames the LAN client sent in it
	delivered uint64        // frames the real servers received in it
	busy      time.Duration // CPU time in it, every state but idle, iowait and steal, all cores (/proc/stat)
	cores     string        // how busy each core was in it (coresBusy)
	// sent and received are the whole flood's, queues drained (loss).
	sent, received uint64
}

// steadyFrom is how far inside the flood its steady window starts and
// ends.
const steadyFrom = 500 * time.Millisecond

// rate is the delivered frames per second.
func (r blastResult) rate() float64 { return float64(r.delivered) / r.elapsed.Seconds() }

// offeredRate is the sent frames per second.
func (r blastResult) offeredRate() float64 { return float64(r.offered) / r.elapsed.Seconds() }

// busyPer is the busy CPU microseconds per frame, for n frames.
func (r blastResult) busyPer(n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(r.busy.Microseconds()) / float64(n)
}

// trafgenBlast sends warm frames of the trafgen packet conf first (so
// connection entries and neighbors exist), then floods with it for
// benchDuration (at most benchMaxSent frames), with extra trafgen options
// (--rate), and measures that window.
//
// A trafgen that gives up on a full transmit queue (errTrafgenStalled)
// measured nothing: the blast is made again, once.
func trafgenBlast(b *testing.B, l *testbed.Lab, trafgen, conf string, warm int, args ...string) blastResult {
	return trafgenBlastFor(b, l, trafgen, conf, warm, benchDuration, args...)
}

// trafgenBlastFor is trafgenBlast flooding for d.
func trafgenBlastFor(b *testing.B, l *testbed.Lab, trafgen, conf string, warm int, d time.Duration, args ...string) blastResult {
	path := writeTrafgenConf(b, conf)
	for try := 0; ; try++ {
		r, err := trafgenBlastOnce(b, l, trafgen, path, warm, d, args...)
		if errors.Is(err, errTrafgenStalled) && try == 0 {
			b.Logf("blast made again: %v", err)
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
}

// trafgenBlastOnce is one try of trafgenBlastFor, with the configuration
// at path.
func trafgenBlastOnce(b *testing.B, l *testbed.Lab, trafgen, path string, warm int, d time.Duration, args ...string) (blastResult, error) {
	if _, err := runTrafgen(context.Background(), l, trafgen, path, warm, 3*time.Second); err != nil {
		return blastResult{}, err
	}
	time.Sleep(200 * time.Millisecond)
	sent, got := txPackets(b, l.LANClient), rxPackets(b, l)
	type ran struct {
		elapsed time.Duration
		err     error
	}
	done := make(chan ran, 1)
	go func() {
		elapsed, err := runTrafgen(context.Background(), l, trafgen, path, benchMaxSent, d, args...)
		done <- ran{elapsed, err}
	}()
	// The steady window: from steadyFrom in to steadyFrom before the
	// end, or to the end if trafgen stops sooner.
	var r blastResult
	var t ran
	finished := false
	select {
	case t = <-done:
		finished = true
	case <-time.After(steadyFrom):
	}
	start, sent0, got0, busy0 := time.Now(), txPackets(b, l.LANClient), rxPackets(b, l), cpuBusyEach(b)
	if !finished {
		select {
		case t = <-done:
			finished = true
		case <-time.After(d - 2*steadyFrom):
		}
	}
	busy1 := cpuBusyEach(b)
	r.elapsed, r.offered, r.delivered, r.busy = time.Since(start), txPackets(b, l.LANClient)-sent0, rxPackets(b, l)-got0, busy1[0]-busy0[0]
	r.cores = coresBusy(busy0, busy1, r.elapsed)
	if !finished {
		t = <-done
	}
	if t.err != nil {
		return blastResult{}, t.err
	}
	time.Sleep(100 * time.Millisecond) // let queues drain into the counters
	r.sent, r.received = txPackets(b, l.LANClient)-sent, rxPackets(b, l)-got
	return r, nil
}

// writeTrafgenConf writes a trafgen packet configuration to a file.
func writeTrafgenConf(b testing.TB, conf string) string {
	path := filepath.Join(b.TempDir(), "flood.trafgen")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// runTrafgen sends n frames of the configuration at path from the LAN
// client on one CPU, for at most d or until ctx ends, with extra trafgen
// options, and returns how long it ran.
func runTrafgen(ctx context.Context, l *testbed.Lab, trafgen, path string, n int, d time.Duration, args ...string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cmd := exec.CommandContext(ctx, trafgen, trafgenArgs(l.LANClient.Iface, path, n, args...)...)
	// trafgen finishes its burst before it heeds SIGINT, and sends
	// from a forked worker: the whole process group is killed at the
	// deadline (the receivers' counters are the measure).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := l.Do(l.LANClient, cmd.Start)
	if err != nil {
		return 0, err
	}
	err = cmd.Wait()
	if err != nil && ctx.Err() == nil { // not our interrupt at the deadline
		if strings.Contains(out.String(), "Flushing TX_RING failed") {
			err = fmt.Errorf("%w (%v)", errTrafgenStalled, err)
		}
		return 0, fmt.Errorf("trafgen: %w: %s", err, out.String())
	}
	return time.Since(start), nil
}

// trafgenArgs is trafgen's command line: n frames of the configuration
// at path out of dev on one CPU, with extra options. trafgen changes
// host-wide settings unless told not to, and neither is the lab's:
// --no-sock-mem keeps it off the global net.core socket memory sysctls,
// and --notouch-irq keeps it from pinning "the NIC's" IRQ: it looks dev
// up by name in /proc/interrupts and /sys/class/net, which are the
// host's (sysfs is mounted in the root namespace), so for the lab's
// "eth0" it would rewrite /proc/irq/N/smp_affinity_list of the host's own
// eth0, and never put it back when killed at the deadline (SIGKILL).
func trafgenArgs(dev, path string, n int, extra ...string) []string {
	return append([]string{"--dev", dev, "--conf", path, "--cpus", "1", "--num", fmt.Sprint(n),
		"--no-sock-mem", "--notouch-irq"}, extra...)
}

// errTrafgenStalled: trafgen gave up because the interface's queue stayed
// full ("Flushing TX_RING failed: Resource temporarily unavailable"), as
// it did once in a paced SYN flood; a background flood starts it again.
var errTrafgenStalled = errors.New("trafgen stopped on a full transmit queue")

// blastGo is the generator without trafgen: link.Port batches of 64.
func blastGo(b *testing.B, l *testbed.Lab) (float64, int) {
	var port link.Port
	err := l.Do(l.LANClient, func() error {
		var err error
		port, err = link.Open(l.LANClient.Iface, link.Config{QdiscBypass: true, Filter: rejectAll})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	defer port.Close()
	frames := link.NewFrames(64)
	l2 := framegen.L2{Src: l.LANClient.MAC, Dst: l.Director.MAC}
	for i := range frames {
		src := netip.AddrPortFrom(l.LANClient.IPv4, uint16(10000+i%benchFlows))
		f := framegen.UDP(l2, src, netip.AddrPortFrom(l.VIP, benchPort), make([]byte, 18)) // 60-byte frame + FCS = 64 on a wire
		frames[i].Data = append(frames[i].Data[:0], f...)
	}
	// Warm up: every flow once, so connection entries and neighbors exist.
	for i := 0; i < benchFlows/len(frames)+1; i++ {
		_, _ = port.WriteBatch(frames)
		rotate(frames)
	}
	time.Sleep(200 * time.Millisecond)

	before := rxPackets(b, l)
	start := time.Now()
	sent := 0
	for time.Since(start) < benchDuration && sent < benchMaxSent {
		n, _ := port.WriteBatch(frames)
		sent += n
		rotate(frames)
	}
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // let queues drain into the counters
	got := rxPackets(b, l) - before
	return float64(got) / elapsed.Seconds(), sent
}

// rotate shifts every frame's source port, so the batch walks all flows.
func rotate(frames []link.Frame) {
	for i := range frames {
		d := frames[i].Data
		p := uint16(d[34])<<8 | uint16(d[35])
		p = 10000 + (p-10000+uint16(len(frames)))%benchFlows
		d[34], d[35] = byte(p>>8), byte(p)
		d[40], d[41] = 0, 0 // UDP checksum optional in IPv4: none
	}
}

// rxPackets sums the real servers' received frames.
func rxPackets(b *testing.B, l *testbed.Lab) uint64 {
	var total uint64
	for _, rs := range l.RealServers {
		_, lk := lanLink(b, rs)
		total += lk.Attrs().Statistics.RxPackets
	}
	return total
}

// txPackets is the frames h's LAN interface sent.
func txPackets(b testing.TB, h *testbed.Host) uint64 {
	_, lk := lanLink(b, h)
	return lk.Attrs().Statistics.TxPackets
}

// cpuBusy is the CPU time the whole machine spent in every state but
// idle, iowait and steal, summed over its cores (the first line of /proc/stat,
// in USER_HZ: 100 per second on Linux).
func cpuBusy(b *testing.B) time.Duration {
	return cpuBusyEach(b)[0]
}

// cpuBusyEach is cpuBusy for the whole machine, then for each core in
// /proc/stat's order (cpu0, cpu1, ...).
func cpuBusyEach(b *testing.B) []time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	var busy []time.Duration
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			break // the cpu lines come first
		}
		if len(f) < 9 {
			b.Fatalf("/proc/stat: %q", line)
		}
		var ticks uint64
		// user nice system irq softirq (guest is in user); not steal, which
		// is other guests' time on this machine's host.
		for _, i := range []int{1, 2, 3, 6, 7} {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				b.Fatalf("/proc/stat: %q: %v", line, err)
			}
			ticks += n
		}
		busy = append(busy, time.Duration(ticks)*10*time.Millisecond)
	}
	if len(busy) < 2 {
		b.Fatalf("/proc/stat: no per-core lines")
	}
	return busy
}

// coresBusy says how busy each core was between two cpuBusyEach readings
// over elapsed, as "cpu0 100% cpu1 3%": the anchor forwards in the
// generator's softirq, on one core; drlb's workers use the other.
func coresBusy(before, after []time.Duration, elapsed time.Duration) string {
	var parts []string
	for i := 1; i < len(before) && i < len(after); i++ {
		parts = append(parts, fmt.Sprintf("cpu%d %.0f%%", i-1, 100*float64(after[i]-before[i])/float64(elapsed)))
	}
	return strings.Join(parts, " ")
}

// rejectAll is a socket filter that accepts nothing: the generator only sends.
var rejectAll = []bpf.RawInstruction{{Op: 0x06, K: 0}}
