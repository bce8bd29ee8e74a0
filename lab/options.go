package lab

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/drlb/drlb/scheduler"
	"github.com/drlb/drlb/testbed"
)

// Sentinel errors; check them with errors.Is.
var (
	// ErrNotRoot: a lab needs root (network namespaces).
	ErrNotRoot = errors.New("needs root (network namespaces): run it with sudo")
	// ErrChecksFailed: the lab ran, but one of its own checks failed.
	ErrChecksFailed = errors.New("some lab checks failed (see the table above)")
	// ErrExists: a lab with the requested name is already up.
	ErrExists = errors.New("a lab with this name is already up")
	// ErrOptions: an option is out of range.
	ErrOptions = errors.New("invalid lab option")
	// ErrUnsupported: labs exist only on Linux.
	ErrUnsupported = errors.New("drlb lab needs Linux (network namespaces)")
)

// Defaults.
const (
	DefaultRealServers = 3
	DefaultRequests    = 12
	DefaultScheduler   = "wrr"
	// KeepName names a kept lab when Options.Name is empty: it must be
	// known so that `drlb lab down` can find it.
	KeepName = "drlblab"
	// MaxRequests bounds the request loop.
	MaxRequests = 10000
)

// Options shapes a lab run. The zero value (plus Executable) is the
// default lab: 3 real servers, wrr 3:2:1, 12 requests.
type Options struct {
	// RealServers is how many real servers to build; 0 means DefaultRealServers.
	RealServers int
	// Scheduler is any ipvsadm -s name; weighted ones that do not hash
	// the client (wrr, wlc, sed, nq) get weights N..1, the others 1; ""
	// means wrr.
	Scheduler string
	// Requests is how many HTTP requests the client sends; 0 means DefaultRequests.
	Requests int
	// Keep leaves the lab, the director and the real servers' services
	// running after Run returns; `drlb lab down` removes them.
	Keep bool
	// Name of the lab (namespace prefix). Empty: unique per run, or
	// KeepName with Keep.
	Name string
	// Dir receives the pcaps, the director's config and its log. Empty: a
	// new temporary directory.
	Dir string
	// Trace runs the director with -trace and shows its narration of the
	// walked request.
	Trace bool
	// Executable is the drlb binary run as the director (and, with Keep,
	// as the real servers' services). Required.
	Executable string
	// Scenario, when set, runs that scenario (see Scenarios) instead of
	// the walkthrough: it builds its own lab, so RealServers, Scheduler,
	// Requests and Keep do not apply.
	Scenario string
	// HTML, when set, is where the run writes one self-contained page:
	// the topology, the walked request (or the scenario) as drawings,
	// and the check table.
	HTML string
}

// withDefaults fills in defaults and validates.
func (o Options) withDefaults() (Options, error) {
	if o.RealServers == 0 {
		o.RealServers = DefaultRealServers
	}
	if o.Requests == 0 {
		o.Requests = DefaultRequests
	}
	if o.Scheduler == "" {
		o.Scheduler = DefaultScheduler
	}
	if o.Name == "" && o.Keep {
		o.Name = KeepName
	}
	switch {
	case o.RealServers < 1 || o.RealServers > testbed.MaxRealServers:
		return o, fmt.Errorf("%w: --realservers %d: want 1..%d", ErrOptions, o.RealServers, testbed.MaxRealServers)
	case o.Requests < 1 || o.Requests > MaxRequests:
		return o, fmt.Errorf("%w: --requests %d: want 1..%d", ErrOptions, o.Requests, MaxRequests)
	case !slices.Contains(scheduler.Names(), o.Scheduler):
		return o, fmt.Errorf("%w: --scheduler %q: want one of %s", ErrOptions, o.Scheduler, strings.Join(scheduler.Names(), ", "))
	case o.Executable == "":
		return o, fmt.Errorf("%w: no drlb executable to run as the director", ErrOptions)
	case o.Scenario != "" && scenarioNamed(o.Scenario) == nil:
		return o, fmt.Errorf("%w: --scenario %q: want one of %s (drlb lab --list-scenarios)", ErrOptions, o.Scenario, strings.Join(scenarioNames(), ", "))
	case o.Scenario != "" && o.Keep:
		return o, fmt.Errorf("%w: --keep: a scenario's lab is always torn down", ErrOptions)
	}
	if sc := scenarioNamed(o.Scenario); sc != nil {
		o.RealServers, o.Scheduler = sc.RealServers, sc.Scheduler
	}
	return o, nil
}

// weights returns the real servers' weights: N, N-1, ..., 1 for a weighted
// scheduler (so the distribution visibly follows them), all 1 for the
// others (rr, lc) and for sh and mh, which send the lab's one client to one
// server whatever the weights.
func (o Options) weights() []int {
	t := schedTraits(o.Scheduler)
	w := make([]int, o.RealServers)
	for i := range w {
		w[i] = 1
		if t.Weighted && !t.Consistent {
			w[i] = o.RealServers - i
		}
	}
	return w
}

// schedTraits returns the traits of a scheduler withDefaults accepted (the
// zero Traits for a name it did not).
func schedTraits(sched string) scheduler.Traits {
	t, _ := scheduler.TraitsOf(sched)
	return t
}
