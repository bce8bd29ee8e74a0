package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/replay"
)

// runReplay is `drlb replay -c CONFIG -in IN.pcap -out OUT.pcap [-v]`: the
// live director's step over a capture, for testing balancing decisions
// offline: OUT holds every frame the director would send.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", stderr)
	cfgPath := fs.String("c", "", "config file (drlb YAML, ipvsadm-save rules or keepalived.conf); every real server needs a mac")
	inPath := fs.String("in", "", "input capture (pcap or pcapng, Ethernet) taken on the director's LAN")
	outPath := fs.String("out", "", "output pcap: every frame the director would send (forwarded frames, its ARP/NDP answers, too-big replies), in order, with the timestamps of the frames that caused them")
	verbose := fs.Bool("v", false, "print a line per frame: number, what the director did (forward, answer, pass, drop) and why, flow, real server, what it sent")
	macFlag := fs.String("mac", "", "the director's MAC (default: the MAC most frames to a VIP were sent to in the capture)")
	mtu := fs.Int("mtu", 0, "the LAN's MTU: larger packets that may not be fragmented get ICMP fragmentation-needed / packet-too-big, as live (default 0: no check; leave it for a capture taken with GRO on, whose merged super-frames live forwards)")
	forwardedOnly := fs.Bool("forwarded-only", false, "write only the forwarded frames, not the director's own answers")
	var rsMACs rsMACFlag
	fs.Var(&rsMACs, "rs-mac", "ADDR=MAC: a real (or sorry) server's MAC, for configs without mac fields such as ipvsadm rules or keepalived.conf (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drlb replay -c CONFIG -in IN.pcap -out OUT.pcap [-v] [-mac MAC] [-mtu N] [-forwarded-only]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" || *inPath == "" || *outPath == "" {
		return usageError("-c, -in and -out are required")
	}
	if *mtu < 0 || *mtu > 65535 {
		return usageError("-mtu %d: want 0 (no check) or an MTU up to 65535", *mtu)
	}
	var mac net.HardwareAddr
	if *macFlag != "" {
		m, err := net.ParseMAC(*macFlag)
		if err != nil || len(m) != 6 {
			return usageError("-mac %q is not an Ethernet MAC address", *macFlag)
		}
		// The director's own address: a broadcast, multicast or zero one
		// is no interface's, and every frame "from" it would be dropped
		// as the director's own.
		if msg := config.MACProblem(m); msg != "" {
			return usageError("-mac %s %s", m, msg)
		}
		mac = m
	}
	cfg, _, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return err
	}
	if err := rsMACs.apply(cfg); err != nil {
		return asUsage(err)
	}
	if err := replay.CheckMACs(cfg); err != nil {
		return asUsage(fmt.Errorf("%s: %w", *cfgPath, err))
	}
	in, err := openInput(ctx, *inPath)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %s not written", *outPath)
	}
	if err != nil {
		return err
	}
	defer in.Close()
	// Ctrl-C or SIGTERM closes the input, which ends a replay waiting on
	// a FIFO or one going through a large file, at its next read.
	defer context.AfterFunc(ctx, func() { in.Close() })()
	// Write next to the target and rename at the end, so a failed replay
	// never leaves a half-written output behind.
	tmp, err := os.CreateTemp(dirOf(*outPath), ".drlb-replay-*.pcap")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	opts := replay.Options{MAC: mac, MTU: *mtu, ForwardedOnly: *forwardedOnly}
	if *verbose {
		opts.Listing = stdout
	}
	sum, err := replay.Run(cfg, in, tmp, opts)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %s not written", *outPath)
	}
	if err != nil {
		if errors.Is(err, replay.ErrInput) {
			return fmt.Errorf("%s: %w", *inPath, err)
		}
		return err
	}
	if err := os.Rename(tmp.Name(), *outPath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s -> %s\n", *inPath, sum, *outPath)
	return nil
}

// openInput opens path for reading, or gives up when ctx ends first:
// opening a FIFO waits for its writer, in a system call that Ctrl-C,
// which main catches, does not interrupt. A file opened after that is
// closed at once.
func openInput(ctx context.Context, path string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.f != nil {
				o.f.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// rsMACFlag collects -rs-mac ADDR=MAC.
type rsMACFlag map[netip.Addr]net.HardwareAddr

func (f *rsMACFlag) String() string { return "" }

func (f *rsMACFlag) Set(v string) error {
	a, m, ok := strings.Cut(v, "=")
	addr, err := netip.ParseAddr(a)
	if !ok || err != nil {
		return fmt.Errorf("%q is not ADDR=MAC", v)
	}
	mac, err := net.ParseMAC(m)
	if err != nil || len(mac) != 6 {
		return fmt.Errorf("%q: %q is not an Ethernet MAC address", v, m)
	}
	// Checked as a config's mac field and drlb run -r ADDR,mac=MAC are: a
	// broadcast or zero MAC was accepted here, and the replay "forwarded"
	// every frame to it.
	if msg := config.MACProblem(mac); msg != "" {
		return fmt.Errorf("%q: mac %s %s", v, mac, msg)
	}
	if *f == nil {
		*f = rsMACFlag{}
	}
	(*f)[addr] = mac
	return nil
}

// apply fills the MACs in; naming an address no service has is an error.
func (f rsMACFlag) apply(cfg *config.Config) error {
	for addr, mac := range f {
		found := false
		for i := range cfg.Services {
			for j := range cfg.Services[i].RealServers {
				if rs := &cfg.Services[i].RealServers[j]; rs.Address == addr {
					rs.MAC, found = mac, true
				}
			}
			if ss := cfg.Services[i].SorryServer; ss != nil && ss.Address == addr {
				ss.MAC, found = mac, true
			}
		}
		if !found {
			return fmt.Errorf("-rs-mac %s: no real server has that address", addr)
		}
	}
	return nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[:i+1]
		}
	}
	return "."
}
