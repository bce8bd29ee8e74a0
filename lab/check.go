package lab

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// check is one of the lab's own verdicts: any failure makes `drlb lab`
// exit non-zero, so the lab doubles as a self-test.
type check struct {
	name   string
	ok     bool
	detail string
}

// checks collects verdicts as the run goes.
type checks []check

func (c *checks) add(name string, ok bool, format string, args ...any) {
	*c = append(*c, check{name: name, ok: ok, detail: fmt.Sprintf(format, args...)})
}

func (c checks) failed() bool {
	for _, x := range c {
		if !x.ok {
			return true
		}
	}
	return false
}

func (c checks) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  RESULT\tCHECK\tFOUND")
	for _, x := range c {
		r := "PASS"
		if !x.ok {
			r = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r, x.name, x.detail)
	}
	tw.Flush()
}
