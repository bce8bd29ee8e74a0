package forwarder

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// scenarioFrames returns the frames of the replay golden scenario, the
// richest seed corpus there is (nil if it is missing).
func scenarioFrames() [][]byte {
	f, err := os.Open(filepath.Join("..", "testdata", "replay", "mixed.pcap"))
	if err != nil {
		return nil
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil
	}
	var out [][]byte
	for {
		d, _, err := r.ReadPacketData()
		if err != nil {
			return out
		}
		out = append(out, append([]byte(nil), d...))
	}
}

// seedFrames is a spread of valid and broken frames for fuzz corpora:
// built here, plus every frame of the replay scenarios.
func seedFrames() [][]byte {
	c := client(0, 1234)
	v := toDir
	v.VLAN = 7
	qinq := v
	qinq.Outer = 100
	stacked := qinq
	stacked.OuterTPID = 0x8100
	reply := framegen.TCP(toDir, netip.AddrPortFrom(vip, 80), c, "PA", 1, 1, make([]byte, 64))
	seeds := [][]byte{
		syn(c), ack(c), fin(c),
		framegen.TCP(v, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil),
		framegen.TCP(qinq, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil),
		framegen.UDP(stacked, c, netip.AddrPortFrom(vip, 53), []byte("q")),
		framegen.TCP(qinq, netip.MustParseAddrPort("[2001:2:0:1::10]:5"), netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil),
		// IPv6 between IPv4-mapped addresses: still 16-byte addresses.
		framegen.TCP(toDir, netip.MustParseAddrPort("[::ffff:198.18.1.10]:5"), netip.MustParseAddrPort("[::ffff:198.18.0.100]:80"), "S", 1, 0, nil),
		framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("q")),
		framegen.TCP(toDir, netip.MustParseAddrPort("[2001:2:0:1::10]:5"), netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil),
		framegen.ICMPFragNeeded(toDir, netip.MustParseAddr("198.18.1.1"), vip, framegen.IPPacket(reply)[:28], 1400),
		framegen.ICMPEcho(toDir, c.Addr(), vip, 1),
		framegen.ARPRequest(toDir, c.Addr(), vip),
		syn(c)[:40],
	}
	seeds = append(seeds, framegen.IPv4Fragments(toDir, c, netip.AddrPortFrom(vip, 53), make([]byte, 3000), 1480, 5)...)
	seeds = append(seeds, framegen.IPv6Fragments(toDir, netip.MustParseAddrPort("[2001:2:0:1::10]:5"), netip.AddrPortFrom(vip6, 53), make([]byte, 3000), 1232, 5)...)
	return append(seeds, scenarioFrames()...)
}

// FuzzProcess feeds arbitrary frames through a forwarder: it must never
// panic, and whatever it forwards must differ from its input in the MACs
// only, and go to a real server's MAC.
func FuzzProcess(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s, uint8(0))
	}
	fw := newForwarder(f, testConfig("mh", 3), Options{MTU: 576})
	rr := newForwarder(f, testConfig("rr", 3), Options{})
	// A table of 4: soon under pressure, so stateless SYNs and adoption
	// (stateless.go) get fuzzed too.
	small := testConfig("wlc", 3)
	small.MaxConns = 4
	tiny := newForwarder(f, small, Options{})
	f.Fuzz(func(t *testing.T, frame []byte, flags uint8) {
		for _, g := range []*Forwarder{fw, rr, tiny} {
			in := append([]byte(nil), frame...)
			m := &Meta{Time: t0 + int64(flags)*second}
			res := g.Process(in, m)
			if res.Reason == ReasonTooBig {
				// Every too-big frame is answered, but an ICMP error
				// or a non-initial fragment (TooBig).
				var p packet
				out := make([]byte, TooBigMaxLen)
				if n := g.TooBig(in, out); n == 0 && (decode(in, &p) != nil || !p.icmpErr && (!p.frag || p.fragFirst)) {
					t.Fatalf("no ICMP error built for a too-big frame")
				}
			}
			switch res.Verdict {
			case Forward:
				if !bytes.Equal(in[12:], frame[12:]) {
					t.Fatalf("forwarded frame changed beyond the MACs")
				}
				if !bytes.Equal(in[0:6], rsMACs[res.Real]) {
					t.Fatalf("forwarded to %x, not real server %d", in[0:6], res.Real)
				}
			default:
				if !bytes.Equal(in, frame) {
					t.Fatalf("%v/%v frame modified", res.Verdict, res.Reason)
				}
			}
			// Also with a partial checksum flag and arbitrary offsets.
			in = append(in[:0], frame...)
			m.CsumPartial = true
			m.CsumStart, m.CsumOffset = uint16(flags), uint16(flags>>3)
			g.Process(in, m)
		}
	})
}

// FuzzDecode cross-checks the hand-written decoder against gopacket on
// every frame both accept.
func FuzzDecode(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var p packet
		if err := decode(frame, &p); err != nil || p.frag || p.icmpErr {
			return
		}
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: false, NoCopy: true})
		if pkt.ErrorLayer() != nil {
			return
		}
		nl := pkt.NetworkLayer()
		if nl == nil {
			return
		}
		// gopacket's addresses are 4 bytes for IPv4 and 16 for IPv6, as
		// decode's are: an IPv4-mapped address in an IPv6 header stays
		// 16 bytes on both sides, so no Unmap.
		src, _ := netip.AddrFromSlice(nl.NetworkFlow().Src().Raw())
		dst, _ := netip.AddrFromSlice(nl.NetworkFlow().Dst().Raw())
		if src != p.src || dst != p.dst {
			t.Fatalf("addresses: decode %v->%v, gopacket %v->%v", p.src, p.dst, src, dst)
		}
		switch l := pkt.TransportLayer().(type) {
		case *layers.TCP:
			if p.proto == protoTCP && (uint16(l.SrcPort) != p.srcPort || uint16(l.DstPort) != p.dstPort) {
				t.Fatalf("tcp ports: decode %d->%d, gopacket %d->%d", p.srcPort, p.dstPort, l.SrcPort, l.DstPort)
			}
		case *layers.UDP:
			if p.proto == protoUDP && (uint16(l.SrcPort) != p.srcPort || uint16(l.DstPort) != p.dstPort) {
				t.Fatalf("udp ports: decode %d->%d, gopacket %d->%d", p.srcPort, p.dstPort, l.SrcPort, l.DstPort)
			}
		}
	})
}

// populate opens n established connections from distinct clients.
func populate(b testing.TB, f *Forwarder, n int) {
	frames := [][]byte{syn(client(0, 1)), ack(client(0, 1))}
	for j, frame := range frames {
		m := &Meta{Time: t0 + int64(j)*second/2}
		for i := 0; i < n; i++ {
			binary.BigEndian.PutUint16(frame[14+12+2:], uint16(i>>16)) // client IP low half
			binary.BigEndian.PutUint16(frame[14+20:], uint16(i))       // client port
			if r := f.Process(frame, m); r.Verdict != Forward {
				b.Fatalf("populate %d: %v/%v", i, r.Verdict, r.Reason)
			}
		}
	}
}

// benchForwarder is a forwarder holding 1M connections in a table for 4M:
// a quarter full, far from the pressure that makes SYNs stateless.
func benchForwarder(b *testing.B, sched string) *Forwarder {
	return benchForwarderMax(b, sched, 1_000_000, 4_000_000)
}

// benchForwarderN is a forwarder holding n established connections in a
// table for 2n.
func benchForwarderN(b *testing.B, sched string, n int) *Forwarder {
	return benchForwarderMax(b, sched, n, max(2*n, 1024))
}

func benchForwarderMax(b *testing.B, sched string, n, maxConns int) *Forwarder {
	cfg := testConfig(sched, 3)
	cfg.MaxConns = maxConns
	f := newForwarder(b, cfg, Options{})
	populate(b, f, n)
	return f
}

// BenchmarkExistingFlow: a packet of an existing connection, visiting all
// live connections in turn (no locality: with 1M connections every packet
// misses the CPU caches, the worst case; 10k shows the CPU cost alone).
func BenchmarkExistingFlow(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			f := benchForwarderN(b, "wrr", n)
			frame := ack(client(0, 1))
			buf := make([]byte, len(frame))
			m := &Meta{Time: t0 + second}
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				copy(buf, frame)
				binary.BigEndian.PutUint16(buf[14+12+2:], uint16((i%n)>>16))
				binary.BigEndian.PutUint16(buf[14+20:], uint16(i%n))
				if r := f.Process(buf, m); r.Reason != ReasonExisting {
					b.Fatalf("%v/%v", r.Verdict, r.Reason)
				}
			}
		})
	}
}

// BenchmarkNewFlow: a SYN of a new connection next to 1M live ones; the
// table is kept at size by removing each connection with an RST after.
func BenchmarkNewFlow(b *testing.B) {
	for _, sched := range []string{"rr", "wlc", "mh"} {
		b.Run(sched, func(b *testing.B) {
			f := benchForwarder(b, sched)
			s := syn(client(0, 1))
			s[14+12] = 199 // clients outside the populated range
			r := framegen.TCP(toDir, client(0, 1), netip.AddrPortFrom(vip, 80), "R", 2, 0, nil)
			r[14+12] = 199
			m := &Meta{Time: t0 + second}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint16(s[14+20:], uint16(i))
				binary.BigEndian.PutUint16(s[14+12+2:], uint16(i>>16))
				if res := f.Process(s, m); res.Reason != ReasonNew {
					b.Fatalf("%v/%v", res.Verdict, res.Reason)
				}
				binary.BigEndian.PutUint16(r[14+20:], uint16(i))
				binary.BigEndian.PutUint16(r[14+12+2:], uint16(i>>16))
				f.Process(r, m) // CLOSE state, expires in 10s
				m.Time += int64(20e3)
			}
		})
	}
}

// existingBatch is a batch of frames of existing connections for the
// batch benchmarks: each fill writes ACKs of the next PrefetchBatch of the
// n connections populate opened, visited in turn (no locality), into one
// of two sets of buffers in turn, so that a batch stays intact while the
// next one is filled (a pipeline across batches holds both).
type existingBatch struct {
	frame []byte
	sets  [2][][]byte
	n, i  int
}

func newExistingBatch(n int) *existingBatch {
	frame := ack(client(0, 1))
	e := &existingBatch{frame: frame, n: n}
	for s := range e.sets {
		e.sets[s] = make([][]byte, PrefetchBatch)
		for j := range e.sets[s] {
			e.sets[s][j] = slices.Clone(frame)
		}
	}
	return e
}

// fill writes the batch's frames and returns them. Forwarding a frame of
// an existing connection rewrites its MACs and nothing else (DR), so
// fill writes back the MACs and the connection's bytes only: copying the
// whole frame cost about 5 ns per frame, the harness's and not the
// pipeline's.
func (e *existingBatch) fill() [][]byte {
	bufs := e.sets[e.i/PrefetchBatch%2]
	for _, buf := range bufs {
		copy(buf[:12], e.frame[:12])
		binary.BigEndian.PutUint16(buf[14+12+2:], uint16((e.i%e.n)>>16)) // client IP low half
		binary.BigEndian.PutUint16(buf[14+20:], uint16(e.i%e.n))         // client port
		e.i++
	}
	return bufs
}

// BenchmarkExistingFlowSparse is the director's batch (Prefetch, held
// counts, Process) for tables whose entries are few or many, packed into
// a slot array sized for twice their number or scattered over the array
// of the default max_conns (1M: 64 MiB), each with Prefetch's rule
// (PrefetchMinConns, PrefetchMinTableBytes), forced off and forced on:
// the rule should match the faster of the two.
func BenchmarkExistingFlowSparse(b *testing.B) {
	for _, c := range []struct{ conns, max int }{
		{1000, config.DefaultMaxConns}, {10_000, config.DefaultMaxConns}, {10_000, 20_000}, {30_000, 60_000},
	} {
		f := benchForwarderMax(b, "wrr", c.conns, c.max)
		batch := newExistingBatch(c.conns)
		m := &Meta{Time: t0 + second}
		for _, v := range []struct {
			name          string
			min, minBytes int
		}{
			{"rule", PrefetchMinConns, PrefetchMinTableBytes},
			{"off", math.MaxInt, math.MaxInt},
			{"on", 0, 0},
		} {
			b.Run(fmt.Sprintf("conns=%d,max=%d/%s", c.conns, c.max, v.name), func(b *testing.B) {
				f.preMin, f.preMinBytes = v.min, v.minBytes
				defer func() { f.preMin, f.preMinBytes = PrefetchMinConns, PrefetchMinTableBytes }()
				b.ReportAllocs()
				packets := 0
				for b.Loop() {
					bufs := batch.fill()
					f.Prefetch(bufs)
					f.HoldCounts()
					for _, buf := range bufs {
						if r := f.Process(buf, m); r.Reason != ReasonExisting {
							b.Fatalf("%v/%v", r.Verdict, r.Reason)
						}
					}
					f.PublishCounts()
					packets += len(bufs)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets), "ns/packet")
			})
		}
	}
}

// BenchmarkExistingFlowBatch is BenchmarkExistingFlow in batches of 64
// frames, as the director's step runs them, side by side: the full path
// alone (noFast, no Prefetch: the pipeline before the fast path), the fast
// path (fastpath.go) without Prefetch, the fast path with Prefetch before
// each batch, that with the batch's counts held and published at its end
// (heldcounts.go), and that with Ahead's prefetches across batches
// instead of Prefetch's (the next batch already filled, as when the
// director reads ahead under load: what it runs then). ns/packet
// compares with BenchmarkExistingFlow; it includes writing the frames
// (~10 ns). 1000 connections keep every slot in the caches: the work
// alone, beside which the 1M row shows what memory adds on the day's host.
func BenchmarkExistingFlowBatch(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 1_000_000} {
		f := benchForwarderN(b, "wrr", n)
		batch := newExistingBatch(n)
		m := &Meta{Time: t0 + second}
		for _, v := range []struct {
			name                   string
			fast, pre, held, ahead bool
		}{
			{"full", false, false, false, false}, {"fast", true, false, false, false},
			{"fast+prefetch", true, true, false, false}, {"fast+prefetch+held", true, true, true, false},
			{"fast+ahead+held", true, false, true, true},
		} {
			b.Run(fmt.Sprintf("conns=%d/%s", n, v.name), func(b *testing.B) {
				f.noFast = !v.fast
				defer func() { f.noFast = false }()
				ahead := f.NewAhead()
				data := make([][]byte, 0, 2*PrefetchBatch)
				next := batch.fill()
				b.ReportAllocs()
				packets := 0
				for b.Loop() {
					bufs := next
					next = batch.fill()
					if v.pre {
						f.Prefetch(bufs)
					}
					if v.ahead {
						data = append(append(data[:0], bufs...), next...)
						ahead.Begin(data, len(bufs))
					}
					if v.held {
						f.HoldCounts()
					}
					for i, buf := range bufs {
						if v.ahead {
							ahead.Before(i)
						}
						if r := f.Process(buf, m); r.Reason != ReasonExisting {
							b.Fatalf("%v/%v", r.Verdict, r.Reason)
						}
					}
					if v.ahead {
						ahead.End()
					}
					if v.held {
						f.PublishCounts()
					}
					packets += len(bufs)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets), "ns/packet")
			})
		}
	}
}
