package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/director"
	"github.com/drlb/drlb/health"
)

// runCheck is `drlb check -c FILE`: read a configuration (drlb YAML,
// ipvsadm-save rules or keepalived.conf) as run and replay would, print
// its warnings and a one-line summary of what it would run, and exit, like
// `keepalived -t` and `nginx -t`. A bad file is exit status 2 with
// FILE:LINE:COL: field: "value": message.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	cfgPath := fs.String("c", "", "config file: drlb YAML, ipvsadm-save rules (ipvsadm -Sn) or keepalived.conf")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drlb check -c CONFIG")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usageError("-c CONFIG is required")
	}
	cfg, warnings, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return err
	}
	// The checks a director would start must be startable too.
	if _, err := health.Targets(cfg); err != nil {
		return asUsage(fmt.Errorf("%s: %w", *cfgPath, err))
	}
	n := len(warnings)
	if cfg.HA != nil && cfg.HA.Sync != nil {
		// drlb run refuses to start (and a reload to apply) without a
		// readable key: said here, as a warning, since the file may
		// live only on the directors and not where the config is
		// checked; the unit's ExecStartPre would otherwise pass a start
		// that fails.
		if _, err := director.ReadSyncKey(cfg.HA.Sync.KeyFile); err != nil {
			// key_file's own line: Sync.Line is the block's first key
			// (peers: as usually written), which the warning misplaced.
			line := cfg.HA.Sync.KeyFileLine
			if line == 0 {
				line = cfg.HA.Sync.Line
			}
			fmt.Fprintf(stderr, "%s:%d: warning: drlb run would refuse to start: %v\n", *cfgPath, line, err)
			n++
		}
	}
	fmt.Fprintln(stdout, checkSummary(*cfgPath, cfg, n))
	return nil
}

// loadConfig reads a config file for run, replay and check: each warning
// goes to stderr as FILE:LINE: warning: ..., and a bad file is a usage
// error (exit status 2).
func loadConfig(path string, stderr io.Writer) (*config.Config, []config.Warning, error) {
	cfg, warnings, err := config.LoadWithWarnings(path)
	for _, w := range warnings {
		fmt.Fprintln(stderr, w)
	}
	if err != nil {
		return nil, warnings, asUsage(err)
	}
	return cfg, warnings, nil
}

// checkSummary says in one line what a director would run, and in a
// second its VRRP, if any:
//
//	keepalived.conf: ok: 3 services on 2 VIPs, 4 real servers, 3 health checks (2 http, 1 tcp), 1 sorry server, interface eth0; 5 warnings
//	keepalived.conf: ha: VRRPv3 vrid 51, priority 150, advert_interval 100ms, preempt
func checkSummary(path string, cfg *config.Config, warnings int) string {
	vips := map[netip.Addr]bool{}
	reals := map[netip.Addr]bool{}
	sorry := map[netip.Addr]bool{}
	checks := map[string]int{}
	total := 0
	for _, s := range cfg.Services {
		vips[s.VIP] = true
		for _, r := range s.RealServers {
			reals[r.Address] = true
			if r.Check != nil {
				checks[r.Check.Type]++
				total++
			}
		}
		if s.SorryServer != nil {
			sorry[s.SorryServer.Address] = true
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ok: %s on %s, %s, %s", path, plural(len(cfg.Services), "service"), plural(len(vips), "VIP"),
		plural(len(reals), "real server"), plural(total, "health check"))
	if total > 0 {
		types := make([]string, 0, len(checks))
		for t := range checks {
			types = append(types, t)
		}
		sort.Strings(types)
		parts := make([]string, len(types))
		for i, t := range types {
			parts[i] = fmt.Sprintf("%d %s", checks[t], t)
		}
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	if len(sorry) > 0 {
		b.WriteString(", " + plural(len(sorry), "sorry server"))
	}
	if cfg.Interface != "" {
		b.WriteString(", interface " + cfg.Interface)
	}
	if warnings > 0 {
		b.WriteString("; " + plural(warnings, "warning"))
	}
	if cfg.HA != nil {
		fmt.Fprintf(&b, "\n%s: ha: VRRPv3 %s", path, cfg.HA)
	}
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
