package doctor

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// ErrFailed is wrapped by Err when a fatal check failed.
var ErrFailed = errors.New("doctor: setup check failed")

// Status is a check's outcome.
type Status uint8

const (
	Pass Status = iota
	Warn        // works, but risky or unusual
	Fail        // DR will misbehave
)

func (s Status) String() string { return [...]string{"PASS", "WARN", "FAIL"}[s] }

// Check is one verified requirement.
type Check struct {
	Name   string // what is checked, e.g. "VIP not on the director"
	Status Status
	Detail string // what was found
	Fix    string // the command that fixes a failure, for an operator
	// ID names checks a program may act on ("forwarding"); empty for most.
	ID string
}

// Report is a list of checks.
type Report []Check

func (r *Report) add(name string, st Status, detail, fix string) {
	*r = append(*r, Check{Name: name, Status: st, Detail: detail, Fix: fix})
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, c := range r {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Err returns nil, or an error listing each failure with its fix.
func (r Report) Err() error {
	var msgs []string
	for _, c := range r {
		if c.Status == Fail {
			m := c.Name + ": " + c.Detail
			if c.Fix != "" {
				m += "; fix: " + c.Fix
			}
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  %s", ErrFailed, strings.Join(msgs, "\n  "))
}

// Print writes the report as a table, with the fix under each failure.
func (r Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tFOUND")
	for _, c := range r {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, c.Detail)
		if c.Status != Pass && c.Fix != "" {
			fmt.Fprintf(tw, "\t  fix:\t%s\n", c.Fix)
		}
	}
	tw.Flush()
}
