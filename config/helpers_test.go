package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// dump renders a parsed Config as stable text, every field shown, for
// golden files and failure messages.
func dump(c *Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface %q\nmax_conns %d\n", c.Interface, c.MaxConns)
	if c.VLAN != 0 {
		fmt.Fprintf(&b, "vlan %d\n", c.VLAN)
	}
	t := c.Timeouts
	fmt.Fprintf(&b, "timeouts tcp=%s tcp_synrecv=%s tcp_fin=%s tcp_close=%s udp=%s\n",
		t.TCPEstablished, t.TCPSynRecv, t.TCPFinWait, t.TCPClose, t.UDP)
	for _, s := range c.Services {
		o := s.SchedOptions
		fmt.Fprintf(&b, "service %s line=%d scheduler=%s hash_port=%t fallback=%t table_size=%d persistence=%s bits=%d\n",
			s.String(), s.Line, s.Scheduler, o.HashPort, o.Fallback, o.TableSize, s.Persistence, s.PersistenceBits)
		if s.DrainTimeout != 0 { // printed only when set, so the goldens of files without it stay as they are
			fmt.Fprintf(&b, "  drain_timeout %s\n", s.DrainTimeout)
		}
		for _, r := range s.RealServers {
			fmt.Fprintf(&b, "  realserver %s line=%d weight=%d mac=%q", r.Address, r.Line, r.Weight, r.MAC.String())
			if k := r.Check; k != nil {
				fmt.Fprintf(&b, " check=%s port=%d", k.Type, k.Port)
				for _, u := range k.URLs {
					fmt.Fprintf(&b, " path=%q status=%s", u.Path, FormatStatus(u.Status))
					if u.Digest != "" {
						fmt.Fprintf(&b, " digest=%s", u.Digest)
					}
					if u.Host != "" {
						fmt.Fprintf(&b, " url_host=%q", u.Host)
					}
				}
				if k.Host != "" {
					fmt.Fprintf(&b, " host=%q", k.Host)
				}
				fmt.Fprintf(&b, " interval=%s timeout=%s retries=%d inhibit=%t retry_delay=%s",
					k.Interval, k.Timeout, k.Retries, k.Inhibit, k.RetryDelay)
				if k.Type == "udp" || k.Payload != nil || k.RequireReply || k.Reply != nil {
					fmt.Fprintf(&b, " payload=%q require_reply=%t reply=%q reply_length=%d-%d",
						FormatHex(k.Payload, nil), k.RequireReply, FormatHex(k.Reply, k.ReplyMask), k.ReplyMin, k.ReplyMax)
				}
				if k.Type == "dns" || k.DNSName != "" || k.DNSType != "" {
					fmt.Fprintf(&b, " name=%q record=%s", k.DNSName, k.DNSType)
				}
			}
			b.WriteByte('\n')
		}
		if ss := s.SorryServer; ss != nil {
			fmt.Fprintf(&b, "  sorry_server %s line=%d mac=%q inhibit=%t\n", ss.Address, ss.Line, ss.MAC.String(), ss.Inhibit)
		}
	}
	return b.String()
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test -update rewrites it)\n--- got:\n%s--- want:\n%s", path, got, want)
	}
}

// lines joins lines with newlines, so test inputs show their line numbers.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

// badCase is one input that must fail, with the pieces the error must hold.
type badCase struct {
	name  string
	in    string
	line  int    // 0: not checked
	col   int    // 0: not checked
	field string // exact ("" = none)
	value string // exact ("" = none)
	msg   string // substring of Msg
}

func checkBad(t *testing.T, file string, tc badCase) {
	t.Helper()
	c, err := Parse(file, []byte(tc.in))
	if err == nil {
		t.Fatalf("Parse succeeded, want an error; got:\n%s", dump(c))
	}
	if c != nil {
		t.Errorf("Parse returned a config with its error")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
	if e.File != file {
		t.Errorf("File = %q, want %q (%v)", e.File, file, err)
	}
	if tc.line != 0 && e.Line != tc.line {
		t.Errorf("Line = %d, want %d (%v)", e.Line, tc.line, err)
	}
	if tc.col != 0 && e.Column != tc.col {
		t.Errorf("Column = %d, want %d (%v)", e.Column, tc.col, err)
	}
	if e.Field != tc.field {
		t.Errorf("Field = %q, want %q (%v)", e.Field, tc.field, err)
	}
	if e.Value != tc.value {
		t.Errorf("Value = %q, want %q (%v)", e.Value, tc.value, err)
	}
	if !strings.Contains(e.Msg, tc.msg) {
		t.Errorf("Msg = %q, want it to contain %q (%v)", e.Msg, tc.msg, err)
	}
}
