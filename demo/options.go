package demo

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/drlb/drlb/lab"
	"github.com/drlb/drlb/scheduler"
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
	// Scheduler is any ipvsadm -s name; weighted ones (wrr, wlc, sed)
	// get weights N..1, the others 1; "" means wrr.
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
	case o.RealServers < 1 || o.RealServers > lab.MaxRealServers:
		return o, fmt.Errorf("%w: --realservers %d: want 1..%d", ErrOptions, o.RealServers, lab.MaxRealServers)
	case o.Requests < 1 || o.Requests > MaxRequests:
		return o, fmt.Errorf("%w: --requests %d: want 1..%d", ErrOptions, o.Requests, MaxRequests)
	case !slices.Contains(scheduler.Names(), o.Scheduler):
		return o, fmt.Errorf("%w: --scheduler %q: want one of %s", ErrOptions, o.Scheduler, strings.Join(scheduler.Names(), ", "))
	case o.Executable == "":
		return o, fmt.Errorf("%w: no drlb executable to run as the director", ErrOptions)
	}
	return o, nil
}

// weights returns the real servers' weights: N, N-1, ..., 1 for wrr (so
// the distribution visibly follows them), all 1 for rr.
func (o Options) weights() []int {
	w := make([]int, o.RealServers)
	for i := range w {
		w[i] = 1
		if weighted(o.Scheduler) {
			w[i] = o.RealServers - i
		}
	}
	return w
}

// weighted reports schedulers whose lab demo uses unequal weights, so the
// distribution visibly follows them.
func weighted(sched string) bool { return sched == "wrr" || sched == "wlc" || sched == "sed" }
