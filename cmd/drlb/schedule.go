package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/drlb/drlb/scheduler"
)

// maxScheduleServers is how many synthetic addresses 198.18.0.11 ... .255
// there are.
const maxScheduleServers = 255 - 11 + 1

// simServer is one -r flag: a name, its weight and the synthetic address it
// stands for.
type simServer struct {
	name   string
	weight int
}

// serverFlags collects repeated -r NAME[:WEIGHT] flags.
type serverFlags []simServer

func (s *serverFlags) String() string {
	parts := make([]string, len(*s))
	for i, v := range *s {
		parts[i] = v.name + ":" + strconv.Itoa(v.weight)
	}
	return strings.Join(parts, " ")
}

func (s *serverFlags) Set(v string) error {
	srv, err := parseServerSpec(v)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(*s, func(o simServer) bool { return o.name == srv.name }) {
		return fmt.Errorf("server name %q given twice", srv.name)
	}
	if len(*s) == maxScheduleServers {
		return fmt.Errorf("too many servers: at most %d", maxScheduleServers)
	}
	*s = append(*s, srv)
	return nil
}

// parseServerSpec parses NAME[:WEIGHT]; the weight defaults to 1 and may be
// 0 (quiesced).
func parseServerSpec(v string) (simServer, error) {
	name, w, hasWeight := strings.Cut(v, ":")
	if name == "" {
		return simServer{}, fmt.Errorf("empty server name in %q (want NAME[:WEIGHT])", v)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }); i >= 0 {
		return simServer{}, fmt.Errorf("server name %q contains a space or control character", name)
	}
	srv := simServer{name: name, weight: 1}
	if hasWeight {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 || n > math.MaxInt32 {
			return simServer{}, fmt.Errorf("bad weight %q for server %q (want an integer from 0 to %d)", w, name, math.MaxInt32)
		}
		srv.weight = n
	}
	return srv, nil
}

// nameFlags collects repeated flags naming servers.
type nameFlags []string

func (n *nameFlags) String() string     { return strings.Join(*n, ",") }
func (n *nameFlags) Set(v string) error { *n = append(*n, v); return nil }

// scheduleOpts is the parsed command line.
type scheduleOpts struct {
	alg     string
	traits  scheduler.Traits // of alg
	servers serverFlags
	n       int
	nSet    bool
	clients int
	remove  string
	down    nameFlags
	opts    scheduler.Options
}

func runSchedule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseScheduleFlags(args, stderr)
	if err != nil {
		return err
	}
	snap := o.snapshot("")
	s, err := scheduler.New(o.alg, snap, o.opts)
	if err != nil {
		// Bad options (a non-prime table size) are a usage error.
		return usageError("%v", err)
	}
	if o.clients > 0 {
		return o.spread(ctx, stdout, s, snap)
	}
	return o.sequence(ctx, stdout, s, snap)
}

func parseScheduleFlags(args []string, stderr io.Writer) (*scheduleOpts, error) {
	o := &scheduleOpts{}
	fs := newFlagSet("schedule", stderr)
	fs.StringVar(&o.alg, "s", "rr", "scheduler `NAME`: "+strings.Join(scheduler.Names(), ", "))
	fs.Var(&o.servers, "r", "real server `NAME[:WEIGHT]`, weight 1 if omitted (repeat; addresses 198.18.0.11, .12, ...)")
	fs.IntVar(&o.n, "n", 0, "number of new connections to place (default: the sum of the weights, one wrr cycle, at most 1000)")
	fs.IntVar(&o.clients, "clients", 0, "sh/mh: show how `N` pseudo-random clients spread over the servers")
	fs.StringVar(&o.remove, "remove", "", "sh/mh with --clients: also show how many clients move when server `NAME` is removed")
	fs.Var(&o.down, "down", "mark server `NAME` unavailable, as a failed health check would (repeat)")
	fs.BoolVar(&o.opts.HashPort, "port", false, "sh/mh: hash the client port too (sh-port, mh-port)")
	fs.BoolVar(&o.opts.HashPort, "p", false, "short for --port")
	fs.BoolVar(&o.opts.Fallback, "fallback", false, "sh/mh: give an unavailable server's clients to another (sh-fallback)")
	fs.IntVar(&o.opts.TableSize, "table-size", 0, "mh: lookup table size, a prime (default 65537)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: drlb schedule -s SCHEDULER -r NAME[:WEIGHT] ... [flags]")
		fmt.Fprintln(w, "\nShows where a scheduler sends new connections. For lc, wlc, sed and nq each")
		fmt.Fprintln(w, "connection stays active, so the counters move. Examples:")
		fmt.Fprintln(w, "  drlb schedule -s wrr -r A:4 -r B:3 -r C:2 -n 9")
		fmt.Fprintln(w, "  drlb schedule -s mh -r A -r B -r C --clients 10000 --remove B")
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.nSet = o.nSet || f.Name == "n" })

	traits, err := scheduler.TraitsOf(o.alg)
	if err != nil {
		return nil, usageError("unknown scheduler %q (valid: %s)", o.alg, strings.Join(scheduler.Names(), ", "))
	}
	o.traits = traits
	if len(o.servers) == 0 {
		return nil, usageError("no real servers: give at least one -r NAME[:WEIGHT]")
	}
	if o.n < 0 {
		return nil, usageError("-n %d: the number of picks cannot be negative", o.n)
	}
	if o.clients < 0 {
		return nil, usageError("--clients %d: the number of clients cannot be negative", o.clients)
	}
	// The hashing options shape sh and mh only, the table size mh only:
	// with another scheduler they were ignored without a word, and the
	// output looked as if they had been tried.
	var ignored error
	fs.Visit(func(f *flag.Flag) {
		switch {
		case ignored != nil:
		case (f.Name == "port" || f.Name == "p" || f.Name == "fallback") && f.Value.String() == "true" && !o.traits.Consistent:
			ignored = usageError("-%s %s: works with sh and mh, not %q", f.Name, f.Value, o.alg)
		case f.Name == "table-size" && o.opts.TableSize != 0 && o.alg != "mh":
			ignored = usageError("-table-size %s: works with mh, not %q", f.Value, o.alg)
		}
	})
	if ignored != nil {
		return nil, ignored
	}
	if o.clients > 0 && !o.traits.Consistent {
		return nil, usageError("--clients works with sh and mh, not %q (the others ignore the client)", o.alg)
	}
	if o.remove != "" {
		if o.clients == 0 {
			return nil, usageError("--remove %q needs --clients N", o.remove)
		}
		if o.index(o.remove) < 0 {
			return nil, usageError("--remove %q: no server of that name (have %s)", o.remove, o.servers.names())
		}
	}
	for _, d := range o.down {
		if o.index(d) < 0 {
			return nil, usageError("--down %q: no server of that name (have %s)", d, o.servers.names())
		}
	}
	if !o.nSet {
		for _, s := range o.servers {
			o.n += s.weight
		}
		o.n = min(max(o.n, len(o.servers)), 1000)
	}
	return o, nil
}

func (s serverFlags) names() string {
	names := make([]string, len(s))
	for i, v := range s {
		names[i] = v.name
	}
	return strings.Join(names, ", ")
}

// index returns the position of the server called name, or -1.
func (o *scheduleOpts) index(name string) int {
	return slices.IndexFunc(o.servers, func(s simServer) bool { return s.name == name })
}

// addr is the synthetic address of the i-th -r server.
func addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}) }

// snapshot builds the scheduler's view of the servers, without the one
// called without (if any).
func (o *scheduleOpts) snapshot(without string) []scheduler.Server {
	var snap []scheduler.Server
	for i, s := range o.servers {
		if s.name == without {
			continue
		}
		snap = append(snap, scheduler.Server{
			Addr:      addr(i),
			Weight:    s.weight,
			Available: !slices.Contains(o.down, s.name),
		})
	}
	return snap
}

// nameOf maps a snapshot index back to the server's name (addresses are
// unique, so this works for snapshots with a server removed too).
func (o *scheduleOpts) nameOf(snap []scheduler.Server, i int) string {
	if i < 0 {
		return "-"
	}
	return o.servers[int(snap[i].Addr.As4()[3])-11].name
}

func (o *scheduleOpts) describe(w io.Writer) {
	fmt.Fprintf(w, "%s over", o.alg)
	for i, s := range o.servers {
		state := ""
		if slices.Contains(o.down, s.name) {
			state = " down"
		}
		fmt.Fprintf(w, " %s=%s(w%d%s)", s.name, addr(i), s.weight, state)
	}
	fmt.Fprintln(w)
}

// simLoad is the connection table of the simulation: every placed
// connection stays active.
type simLoad []uint32

func (l simLoad) Conns(i int) (uint32, uint32) { return l[i], 0 }

// sequence places o.n connections one after the other and prints each
// pick, then the tally.
func (o *scheduleOpts) sequence(ctx context.Context, stdout io.Writer, s scheduler.Scheduler, snap []scheduler.Server) error {
	o.describe(stdout)
	load := make(simLoad, len(snap))
	cl := newClients()
	tally := make([]int, len(snap))
	var failed int
	// The sequence line is printed for at most maxSequence picks: only
	// those are kept (a large -n preallocated a slice of that size, and
	// -n 1e11 crashed with out of memory before the first pick).
	const maxSequence, flushEvery = 100, 1024
	var picks []string
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for k := 1; k <= o.n; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := cl.next()
		i, err := s.Pick(&f, load)
		name := o.nameOf(snap, i)
		switch {
		case errors.Is(err, scheduler.ErrNoServer):
			failed++
			name = "(no server)"
		case err != nil:
			return err
		default:
			tally[i]++
			load[i]++
		}
		if o.n <= maxSequence {
			picks = append(picks, name)
		}
		fmt.Fprintf(tw, "%d\t%s", k, name)
		if o.traits.Consistent {
			fmt.Fprintf(tw, "\tclient %s:%d", f.Src, f.SrcPort)
		}
		if o.traits.LoadBased {
			fmt.Fprintf(tw, "\tactive now")
			for j := range snap {
				fmt.Fprintf(tw, " %s=%d", o.nameOf(snap, j), load[j])
			}
		}
		fmt.Fprintln(tw)
		// A tabwriter holds every line until Flush: flushed in blocks,
		// a large -n prints as it goes, in bounded memory.
		if k%flushEvery == 0 {
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.n <= maxSequence {
		fmt.Fprintf(stdout, "sequence: %s\n", strings.Join(picks, " "))
	}
	return o.printTally(stdout, snap, tally, failed, o.n)
}

func (o *scheduleOpts) printTally(stdout io.Writer, snap []scheduler.Server, tally []int, failed, total int) error {
	var weights int
	for _, s := range snap {
		if s.Available {
			weights += max(s.Weight, 0)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\taddress\tweight\tpicks\tshare\tweight share")
	for i, s := range snap {
		ws := 0.0
		if s.Available && weights > 0 {
			ws = float64(max(s.Weight, 0)) / float64(weights)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", o.nameOf(snap, i), s.Addr, s.Weight, tally[i], pct(tally[i], total), pct1(ws))
	}
	if failed > 0 {
		fmt.Fprintf(tw, "(no server)\t\t\t%d\t%s\t\n", failed, pct(failed, total))
	}
	return tw.Flush()
}

func pct(n, total int) string {
	if total == 0 {
		return "-"
	}
	return pct1(float64(n) / float64(total))
}

func pct1(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

// clients generates the simulated clients: distinct addresses in
// 198.18.0.0/15 (an odd multiplier permutes the 2^17 of them, so the first
// 131072 clients never repeat) with ports from a fixed-seed generator, so
// the output is the same on every run.
type clients struct {
	k   uint32
	rng *rand.Rand
}

func newClients() *clients { return &clients{rng: rand.New(rand.NewPCG(0x6472, 0x6c62))} }

func (c *clients) next() scheduler.Flow {
	i := (c.k*40503 + 12345) & (1<<17 - 1)
	c.k++
	return scheduler.Flow{
		Proto:   6,
		Src:     netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}),
		SrcPort: uint16(1024 + c.rng.IntN(65536-1024)),
		Dst:     netip.AddrFrom4([4]byte{198, 18, 0, 100}),
		DstPort: 80,
	}
}

// spread places o.clients clients with a hashing scheduler and prints the
// share per server, then with --remove how many clients a rebuild without
// that server moves.
func (o *scheduleOpts) spread(ctx context.Context, stdout io.Writer, s scheduler.Scheduler, snap []scheduler.Server) error {
	o.describe(stdout)
	fmt.Fprintf(stdout, "%d clients, port=%v fallback=%v\n", o.clients, o.opts.HashPort, o.opts.Fallback)
	var after scheduler.Scheduler
	var snapAfter []scheduler.Server
	if o.remove != "" {
		snapAfter = o.snapshot(o.remove)
		var err error
		if after, err = scheduler.New(o.alg, snapAfter, o.opts); err != nil {
			return usageError("%v", err)
		}
	}
	tally := make([]int, len(snap))
	var failed, ofRemoved, removedMoved, survivors, survivorsMoved int
	cl := newClients()
	for k := range o.clients {
		if k&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		f := cl.next()
		i, err := s.Pick(&f, nil)
		if err != nil {
			failed++
		} else {
			tally[i]++
		}
		if after == nil {
			continue
		}
		j, errAfter := after.Pick(&f, nil)
		moved := (err == nil) != (errAfter == nil) || (err == nil && snap[i].Addr != snapAfter[j].Addr)
		switch {
		case err == nil && o.nameOf(snap, i) == o.remove:
			ofRemoved++
			if moved {
				removedMoved++
			}
		default:
			survivors++
			if moved {
				survivorsMoved++
			}
		}
	}
	if err := o.printTally(stdout, snap, tally, failed, o.clients); err != nil {
		return err
	}
	if after == nil {
		return nil
	}
	fmt.Fprintf(stdout, "removing %s: %d of %d clients move (%s)\n", o.remove, removedMoved+survivorsMoved, o.clients, pct(removedMoved+survivorsMoved, o.clients))
	fmt.Fprintf(stdout, "  %s's clients: %d of %d move\n", o.remove, removedMoved, ofRemoved)
	fmt.Fprintf(stdout, "  the other servers' clients: %d of %d move (%s)\n", survivorsMoved, survivors, pct(survivorsMoved, survivors))
	return nil
}
