package lab

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
)

func testService(sched string, weights ...int) service {
	s := service{iface: "eth0", vip: netip.MustParseAddr("198.18.0.100"), port: 80, scheduler: sched, weights: weights}
	for i := range weights {
		s.reals = append(s.reals, netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}))
	}
	return s
}

func TestExpected(t *testing.T) {
	for _, tc := range []struct {
		s    service
		n    int
		want []int
	}{
		{testService("wrr", 3, 2, 1), 12, []int{6, 4, 2}},
		{testService("wrr", 3, 2, 1), 1, []int{1, 0, 0}},
		{testService("wrr", 4, 3, 2), 9, []int{4, 3, 2}},
		{testService("rr", 1, 1, 1), 7, []int{3, 2, 2}},
		// Closed connections count as inactive: lc rotates, wlc follows the
		// weights, sed and nq look at active connections only (none).
		{testService("lc", 1, 1, 1), 6, []int{2, 2, 2}},
		{testService("wlc", 3, 2, 1), 12, []int{6, 4, 2}},
		{testService("sed", 3, 2, 1), 12, []int{12, 0, 0}},
		{testService("nq", 1, 1, 1), 5, []int{5, 0, 0}},
	} {
		got, err := tc.s.expected(tc.n)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s %v over %d: %v, %v; want %v", tc.s.scheduler, tc.s.weights, tc.n, got, err, tc.want)
		}
	}
	// One client: sh and mh put every connection on one server.
	for _, sched := range []string{"sh", "mh"} {
		s := testService(sched, 1, 1, 1)
		s.client = netip.MustParseAddr("198.18.1.10")
		got, err := s.expected(12)
		if err != nil || slices.Max(got) != 12 {
			t.Errorf("%s: %v, %v; want all 12 on one server", sched, got, err)
		}
	}
	if _, err := testService("nosuch", 1).expected(1); err == nil {
		t.Error("unknown scheduler accepted")
	}
}

// TestServiceYAML: the config the lab writes is one drlb accepts, and its
// ipvsadm form is what the walkthrough prints.
func TestServiceYAML(t *testing.T) {
	s := testService("wrr", 3, 2, 1)
	cfg, err := config.Parse("lab", []byte(s.yaml()))
	if err != nil {
		t.Fatalf("%v\n%s", err, s.yaml())
	}
	want := "-A -t 198.18.0.100:80 -s wrr\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 2\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n"
	if got := config.FormatIPVSADM(cfg); got != want {
		t.Errorf("ipvsadm form:\n%s\nwant:\n%s", got, want)
	}
	if cfg.Interface != "eth0" {
		t.Errorf("interface %q", cfg.Interface)
	}
	if cfg.HA != nil {
		t.Errorf("ha: %+v without a VRRP group", cfg.HA)
	}
	s.ha = &vrrpGroup{vrid: 51, priority: 150, interval: 100 * time.Millisecond}
	cfg, err = config.Parse("lab", []byte(s.yaml()))
	if err != nil {
		t.Fatalf("%v\n%s", err, s.yaml())
	}
	if h := cfg.HA; h == nil || h.VRID != 51 || h.Priority != 150 || h.AdvertInterval != 100*time.Millisecond || !h.Preempt {
		t.Errorf("ha: %+v\n%s", h, s.yaml())
	}
}

func TestOptions(t *testing.T) {
	o, err := Options{Executable: "drlb"}.withDefaults()
	if err != nil || o.RealServers != 3 || o.Requests != 12 || o.Scheduler != "wrr" || o.Name != "" {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	if w := o.weights(); !slices.Equal(w, []int{3, 2, 1}) {
		t.Errorf("wrr weights %v", w)
	}
	if o, _ := (Options{Executable: "drlb", Keep: true}).withDefaults(); o.Name != KeepName {
		t.Errorf("kept lab named %q, want %q", o.Name, KeepName)
	}
	if w := (Options{RealServers: 2, Scheduler: "rr"}).weights(); !slices.Equal(w, []int{1, 1}) {
		t.Errorf("rr weights %v", w)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Executable: "x", RealServers: -1}, "--realservers -1"},
		{Options{Executable: "x", RealServers: 90}, "--realservers 90"},
		{Options{Executable: "x", Requests: MaxRequests + 1}, "--requests"},
		{Options{Executable: "x", Scheduler: "fastest"}, `--scheduler "fastest": want one of lc, mh, nq, rr, sed, sh, wlc, wrr`},
		{Options{}, "executable"},
	} {
		_, err := tc.o.withDefaults()
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrOptions naming %s", tc.o, err, tc.want)
		}
	}
}
