package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/drlb/drlb/scheduler"
)

func schedule(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runSchedule(context.Background(), args, &out, &errOut)
	return out.String(), err
}

func TestScheduleSequence(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-s", "wrr", "-r", "A:4", "-r", "B:3", "-r", "C:2", "-n", "9"}, "sequence: A A B A B C A B C\n"},
		{[]string{"-s", "wrr", "-r", "A:4", "-r", "B:3", "-r", "C:2"}, "sequence: A A B A B C A B C\n"}, // -n defaults to one cycle
		{[]string{"-s", "rr", "-r", "A", "-r", "B:0", "-r", "C", "-n", "4"}, "sequence: A C A C\n"},
		{[]string{"-s", "rr", "-r", "A", "-r", "B", "-r", "C", "--down", "A", "-n", "4"}, "sequence: B C B C\n"},
		{[]string{"-s", "lc", "-r", "A", "-r", "B", "-r", "C", "-n", "6"}, "sequence: A B C A B C\n"},
		{[]string{"-s", "wlc", "-r", "A:2", "-r", "B:1", "-n", "6"}, "sequence: A B A A B A\n"},
		{[]string{"-s", "sed", "-r", "A:2", "-r", "B:1", "-n", "6"}, "sequence: A A B A A B\n"},
		{[]string{"-s", "nq", "-r", "A:2", "-r", "B:1", "-n", "6"}, "sequence: A B A A A B\n"},
		{[]string{"-s", "rr", "-r", "A:0", "-n", "2"}, "sequence: (no server) (no server)\n"},
		{[]string{"-s", "rr", "-r", "A", "-n", "0"}, "sequence: \n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := schedule(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestScheduleShowsCounters(t *testing.T) {
	out, err := schedule(t, "-s", "lc", "-r", "A", "-r", "B", "-n", "3")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"active now A=1 B=0", "active now A=1 B=1", "active now A=2 B=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

var (
	removedRE  = regexp.MustCompile(`B's clients: (\d+) of (\d+) move`)
	survivorRE = regexp.MustCompile(`other servers' clients: (\d+) of (\d+) move`)
	shareRE    = regexp.MustCompile(`(?m)^([A-D])\s+198\.18\.0\.\d+\s+(\d+)\s+(\d+)\s`)
)

func TestScheduleClients(t *testing.T) {
	for _, tc := range []struct {
		alg          string
		maxSurvivors float64 // share of the other servers' clients that may move
	}{
		{"mh", 0.05},
		{"sh", 1}, // sh reshuffles: shown, not bounded
	} {
		args := []string{"-s", tc.alg, "-r", "A:1", "-r", "B:1", "-r", "C:2", "-r", "D:1", "--clients", "20000", "--remove", "B"}
		out, err := schedule(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := schedule(t, args...)
		if out != again {
			t.Errorf("%s: output differs between runs", tc.alg)
		}
		total := 0
		for _, m := range shareRE.FindAllStringSubmatch(out, -1) {
			w, _ := strconv.Atoi(m[2])
			n, _ := strconv.Atoi(m[3])
			total += n
			if share := float64(n) / 20000; share < float64(w)/5-0.02 || share > float64(w)/5+0.02 {
				t.Errorf("%s: server %s weight %d got share %.3f", tc.alg, m[1], w, share)
			}
		}
		if total != 20000 {
			t.Errorf("%s: per-server counts add up to %d, want 20000:\n%s", tc.alg, total, out)
		}
		m := removedRE.FindStringSubmatch(out)
		if m == nil || m[1] != m[2] || m[1] == "0" {
			t.Errorf("%s: the removed server's clients must all move:\n%s", tc.alg, out)
		}
		s := survivorRE.FindStringSubmatch(out)
		if s == nil {
			t.Fatalf("%s: no survivors line:\n%s", tc.alg, out)
		}
		moved, _ := strconv.Atoi(s[1])
		of, _ := strconv.Atoi(s[2])
		if float64(moved) > tc.maxSurvivors*float64(of) {
			t.Errorf("%s: %d of %d survivors' clients moved", tc.alg, moved, of)
		}
	}
}

func TestScheduleHashPerClient(t *testing.T) {
	out, err := schedule(t, "-s", "sh", "-r", "A", "-r", "B", "-n", "3", "-p", "--fallback", "--down", "B")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out, "client 198.1"); got != 3 {
		t.Errorf("want 3 client lines, got %d:\n%s", got, out)
	}
	if !strings.Contains(out, "sequence: A A A") {
		t.Errorf("with B down and fallback every client goes to A:\n%s", out)
	}
}

func TestScheduleUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the bad value the message must name
	}{
		{[]string{"-s", "fifo", "-r", "A"}, `"fifo"`},
		{[]string{"-s", "rr", "-r", "A:x"}, `"x"`},
		{[]string{"-s", "rr", "-r", "A:-1"}, `"-1"`},
		{[]string{"-s", "rr", "-r", "A:99999999999"}, `"99999999999"`},
		{[]string{"-s", "rr", "-r", ":3"}, `":3"`},
		{[]string{"-s", "rr", "-r", "A", "-r", "A:2"}, `"A"`},
		{[]string{"-s", "rr"}, "no real servers"},
		{[]string{"-s", "rr", "-r", "A", "-n", "-1"}, "-1"},
		{[]string{"-s", "rr", "-r", "A", "--clients", "5"}, `"rr"`},
		{[]string{"-s", "mh", "-r", "A", "--clients", "-5"}, "-5"},
		{[]string{"-s", "mh", "-r", "A", "--remove", "A"}, "--clients"},
		{[]string{"-s", "mh", "-r", "A", "--clients", "5", "--remove", "Z"}, `"Z"`},
		{[]string{"-s", "mh", "-r", "A", "--down", "Z"}, `"Z"`},
		{[]string{"-s", "mh", "-r", "A", "--table-size", "100"}, "100"},
		// Options for other schedulers, once ignored without a word.
		{[]string{"-s", "rr", "-r", "A", "-p"}, `-p true: works with sh and mh, not "rr"`},
		{[]string{"-s", "wrr", "-r", "A", "--port"}, `-port true: works with sh and mh, not "wrr"`},
		{[]string{"-s", "wlc", "-r", "A", "--fallback"}, `-fallback true: works with sh and mh, not "wlc"`},
		{[]string{"-s", "rr", "-r", "A", "--table-size", "7"}, `-table-size 7: works with mh, not "rr"`},
		{[]string{"-s", "sh", "-r", "A", "--table-size", "7"}, `-table-size 7: works with mh, not "sh"`},
		{[]string{"-s", "rr", "-r", "A", "extra"}, `"extra"`},
		{[]string{"-s", "rr", "-r", "A", "--bogus"}, "bogus"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := schedule(t, tc.args...)
			if !errors.Is(err, errUsage) {
				t.Fatalf("error %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
			var out, errOut bytes.Buffer
			if code := run(context.Background(), append([]string{"schedule"}, tc.args...), &out, &errOut); code != exitUsage {
				t.Errorf("exit status %d, want %d", code, exitUsage)
			}
		})
	}
}

func TestScheduleTooManyServers(t *testing.T) {
	var args []string
	for i := range maxScheduleServers + 1 {
		args = append(args, "-r", fmt.Sprintf("s%d", i))
	}
	if _, err := schedule(t, args...); !errors.Is(err, errUsage) {
		t.Fatalf("error %v, want a usage error", err)
	}
	if _, err := schedule(t, append(args[:2*maxScheduleServers], "-n", "1")...); err != nil {
		t.Fatalf("%d servers: %v", maxScheduleServers, err)
	}
}

func TestParseServerSpec(t *testing.T) {
	for _, tc := range []struct {
		in     string
		name   string
		weight int
		ok     bool
	}{
		{"A", "A", 1, true},
		{"A:4", "A", 4, true},
		{"web-1:0", "web-1", 0, true},
		{"A:", "", 0, false},
		{"A:1:2", "", 0, false},
		{"", "", 0, false},
		{"A B:1", "", 0, false},
		{"A:+3", "A", 3, true},
	} {
		s, err := parseServerSpec(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (s.name != tc.name || s.weight != tc.weight)) {
			t.Errorf("parseServerSpec(%q) = %+v, %v; want %s:%d ok=%v", tc.in, s, err, tc.name, tc.weight, tc.ok)
		}
	}
}

func FuzzParseServerSpec(f *testing.F) {
	for _, s := range []string{"A", "A:4", "web-1:0", ":", "A:", "A:-1", "A:99999999999", "\x00:1", "é:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := parseServerSpec(in)
		if err != nil {
			if s != (simServer{}) {
				t.Errorf("%q: error %v with a result %+v", in, err, s)
			}
			return
		}
		if s.name == "" || strings.Contains(s.name, ":") || s.weight < 0 {
			t.Errorf("%q: accepted %+v", in, s)
		}
		// What was accepted prints back to something that parses alike.
		again, err := parseServerSpec(s.name + ":" + strconv.Itoa(s.weight))
		if err != nil || again != s {
			t.Errorf("%q: %+v does not round-trip: %+v, %v", in, s, again, err)
		}
	})
}

// TestScheduleHugeN: a large -n is placed pick by pick (Ctrl-C ends it);
// it allocated room for -n picks up front, and -n 1e11 crashed drlb with
// out of memory (here: a makeslice panic) before the first one.
func TestScheduleHugeN(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // interrupted before the first pick
	var out, errOut bytes.Buffer
	err := runSchedule(ctx, []string{"-s", "rr", "-r", "A", "-n", strconv.Itoa(1 << 60)}, &out, &errOut)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// cancelOnWrite cancels a context at the first write it gets.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (c cancelOnWrite) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

// TestScheduleStreams: the picks of a large -n are printed as they are
// made, not all held until the last (a tabwriter flushed only at the
// end kept every line of -n 1e8 in memory, and printed nothing meanwhile).
func TestScheduleStreams(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := parseScheduleFlags([]string{"-s", "rr", "-r", "A", "-r", "B", "-n", "100000"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	snap := o.snapshot("")
	s, err := scheduler.New(o.alg, snap, o.opts)
	if err != nil {
		t.Fatal(err)
	}
	// describe's line comes first, through its own write: cancel at the
	// first write after it, which must come before the last pick.
	var head bytes.Buffer
	o.describe(&head)
	w := &afterHead{skip: head.Len(), w: cancelOnWrite{cancel}}
	if err := o.sequence(ctx, w, s, snap); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v: nothing was printed before the 100000th pick", err)
	}
}

// afterHead passes writes on to w once skip bytes went by.
type afterHead struct {
	skip int
	w    io.Writer
}

func (a *afterHead) Write(p []byte) (int, error) {
	if a.skip > 0 {
		a.skip -= len(p)
		return len(p), nil
	}
	return a.w.Write(p)
}
