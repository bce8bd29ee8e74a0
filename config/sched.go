package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/drlb/drlb/scheduler"
)

// DefaultScheduler is what a service without one gets: ipvsadm's default.
const DefaultScheduler = "wlc"

// maxTableSize bounds mh_table_size so a config cannot make the director
// allocate an absurd maglev table (the largest prime below 2^20).
const maxTableSize = 1048573

// hashing reports whether sched takes the port/fallback flags: the
// consistent schedulers, which hash the flow (sh and mh).
func hashing(sched string) bool {
	t, err := scheduler.TraitsOf(sched)
	return err == nil && t.Consistent
}

// applyFlag sets the option one scheduler flag names. generic allows
// ipvsadm's flag-1/flag-2 spellings (what ipvsadm -S prints for a scheduler
// it does not know the flag names of).
func applyFlag(opts *scheduler.Options, sched, flag string, generic bool) error {
	prefix, opt, ok := strings.Cut(flag, "-")
	if generic && prefix == "flag" {
		if !hashing(sched) {
			return fmt.Errorf("scheduler flags apply only to sh and mh, not %s", sched)
		}
		switch opt {
		case "1":
			opt = "fallback"
		case "2":
			opt = "port"
		default:
			return errors.New("no drlb scheduler uses this flag (sh and mh use flag-1 and flag-2)")
		}
		prefix = sched
	}
	if !ok || !hashing(prefix) || (opt != "port" && opt != "fallback") {
		return errors.New("unknown scheduler flag (valid: sh-port, sh-fallback, mh-port, mh-fallback)")
	}
	if hashing(sched) && prefix != sched {
		return fmt.Errorf("%s is a flag of the %s scheduler, this service uses %s", flag, prefix, sched)
	}
	if opt == "port" {
		opts.HashPort = true
	} else {
		opts.Fallback = true
	}
	return nil
}

// formatFlags is applyFlag's inverse: the -b argument, "" when none.
func formatFlags(sched string, o scheduler.Options) string {
	var flags []string
	if o.Fallback {
		flags = append(flags, sched+"-fallback")
	}
	if o.HashPort {
		flags = append(flags, sched+"-port")
	}
	return strings.Join(flags, ",")
}

// schedulerProblem checks a service's scheduler name and options; it
// returns the field (relative to the service) and message of the first
// problem, or "" and nil.
func schedulerProblem(s *Service) (field string, err error) {
	names := scheduler.Names()
	if !slices.Contains(names, s.Scheduler) {
		return "scheduler", fmt.Errorf("unknown scheduler (valid: %s)", strings.Join(names, ", "))
	}
	o := s.SchedOptions
	if (o.HashPort || o.Fallback) && !hashing(s.Scheduler) {
		return "flags", fmt.Errorf("scheduler flags apply only to sh and mh, not %s", s.Scheduler)
	}
	if o.TableSize != 0 {
		if s.Scheduler != "mh" {
			return "mh_table_size", fmt.Errorf("applies only to the mh scheduler, not %s", s.Scheduler)
		}
		if o.TableSize < 0 || o.TableSize > maxTableSize || !scheduler.IsPrime(o.TableSize) {
			return "mh_table_size", fmt.Errorf("must be a prime number up to %d (like 65537)", maxTableSize)
		}
	}
	// Let the algorithm judge its own options too; no servers are needed
	// to do that.
	if _, err := scheduler.New(s.Scheduler, nil, o); err != nil {
		return "scheduler", err
	}
	return "", nil
}
