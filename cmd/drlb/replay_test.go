package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join("..", "..", "testdata", "replay", "services.yaml")
	in := filepath.Join("..", "..", "testdata", "replay", "mixed.pcap")
	out := filepath.Join(dir, "out.pcap")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"replay", "-c", cfg, "-in", in, "-out", out, "-v", "-mtu", "1500"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "replay", "golden", "mixed.rr.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("drlb replay output differs from the rr golden pcap")
	}
	for _, want := range []string{"1 answer arp-reply arp who-has 198.18.0.100 tell 198.18.0.1 | sent 198.18.0.100 is-at 02:00:00:00:00:02",
		"answer too-big tcp", "drop own-frame", "122 frames:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("listing or summary lacks %q:\n%s", want, stdout.String())
		}
	}
	// -forwarded-only writes what older releases wrote: forwarded frames only.
	only := filepath.Join(dir, "only.pcap")
	stdout.Reset()
	if code := run(context.Background(), []string{"replay", "-c", cfg, "-in", in, "-out", only, "-mtu", "1500", "-forwarded-only"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("-forwarded-only: exit %d: %s", code, stderr.String())
	}
	if n, f := countPcap(t, only), countPcap(t, out); n != 107 || f != 107+4 {
		t.Errorf("-forwarded-only wrote %d frames, the full output %d; want 107 and 111 (4 answers)", n, f)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("services:\n  - vip: 198.18.0.100\n    port: 80\n    protocol: sctp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nomac := filepath.Join(dir, "nomac.ipvsadm")
	if err := os.WriteFile(nomac, []byte("-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no flags", []string{"replay"}, exitUsage, "-c, -in and -out are required"},
		{"bad flag", []string{"replay", "-x"}, exitUsage, "not defined: -x"},
		{"bad config", []string{"replay", "-c", bad, "-in", in, "-out", out}, exitUsage, "bad.yaml:4"},
		{"no mac", []string{"replay", "-c", nomac, "-in", in, "-out", out}, exitUsage, "services[0].realservers[0] (198.18.0.11, line 2)"},
		{"rs-mac unknown", []string{"replay", "-c", nomac, "-in", in, "-out", out, "-rs-mac", "198.18.0.99=02:00:00:00:00:99"}, exitUsage, "no real server has that address"},
		{"rs-mac bad", []string{"replay", "-c", nomac, "-in", in, "-out", out, "-rs-mac", "198.18.0.11"}, exitUsage, "not ADDR=MAC"},
		{"bad mtu", []string{"replay", "-c", cfg, "-in", in, "-out", out, "-mtu", "-1"}, exitUsage, "-mtu -1"},
		{"bad mac", []string{"replay", "-c", cfg, "-in", in, "-out", out, "-mac", "zz"}, exitUsage, `-mac "zz"`},
		{"rs-mac broadcast", []string{"replay", "-c", nomac, "-in", in, "-out", out, "-rs-mac", "198.18.0.11=ff:ff:ff:ff:ff:ff"}, exitUsage, "mac ff:ff:ff:ff:ff:ff must be a unicast MAC"},
		{"rs-mac multicast", []string{"replay", "-c", nomac, "-in", in, "-out", out, "-rs-mac", "198.18.0.11=01:00:5e:00:00:01"}, exitUsage, "mac 01:00:5e:00:00:01 must be a unicast MAC"},
		{"rs-mac zero", []string{"replay", "-c", nomac, "-in", in, "-out", out, "-rs-mac", "198.18.0.11=00:00:00:00:00:00"}, exitUsage, "must not be all zeros"},
		{"mac broadcast", []string{"replay", "-c", cfg, "-in", in, "-out", out, "-mac", "ff:ff:ff:ff:ff:ff"}, exitUsage, "-mac ff:ff:ff:ff:ff:ff must be a unicast MAC"},
		{"mac zero", []string{"replay", "-c", cfg, "-in", in, "-out", out, "-mac", "00:00:00:00:00:00"}, exitUsage, "-mac 00:00:00:00:00:00 must not be all zeros"},
		{"missing input", []string{"replay", "-c", cfg, "-in", filepath.Join(dir, "none.pcap"), "-out", out}, exitFailure, "none.pcap"},
		{"not a pcap", []string{"replay", "-c", cfg, "-in", cfg, "-out", filepath.Join(dir, "never.pcap")}, exitFailure, "bad input capture"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr.String(), tc.code, tc.msg)
			}
		})
	}
	// ipvsadm rules plus -rs-mac replay like the YAML with mac fields.
	stdout.Reset()
	code = run(context.Background(), []string{"replay", "-c", nomac, "-in", in, "-out", out, "-rs-mac", "198.18.0.11=02:00:00:00:00:11"}, &stdout, &stderr)
	if code != exitOK || !strings.Contains(stdout.String(), "forwarded") {
		t.Fatalf("ipvsadm rules with -rs-mac: exit %d %s %s", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "never.pcap")); !os.IsNotExist(err) {
		t.Error("a failed replay left an output file behind")
	}
}

func countPcap(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			return n
		}
		n++
	}
}

// TestReplayInterrupted: Ctrl-C (the context) ends a replay that waits on
// a FIFO, whose writer writes nothing or has not opened it yet; main
// catches the signal, so a replay that did not watch the context would
// wait for ever.
func TestReplayInterrupted(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "in.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	for _, writer := range []bool{true, false} {
		t.Run(fmt.Sprintf("writer=%v", writer), func(t *testing.T) {
			if writer {
				w, err := os.OpenFile(fifo, os.O_RDWR, 0) // a writer that stays silent
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
			}
			replayInterrupted(t, fifo, filepath.Join(dir, fmt.Sprintf("out-%v.pcap", writer)))
		})
	}
}

// replayInterrupted runs drlb replay on fifo, ends its context 100 ms
// later and checks it stops, saying so, and writes nothing.
func replayInterrupted(t *testing.T, fifo, out string) {
	cfg := filepath.Join("..", "..", "testdata", "replay", "services.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"replay", "-c", cfg, "-in", fifo, "-out", out, "-mac", "02:00:00:00:00:02"}, &stdout, &stderr)
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != exitFailure || !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("exit %d, stderr %q; want exit 1 saying interrupted", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replay still waits on its FIFO 10 s after the context ended")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an interrupted replay left %s (%v)", out, err)
	}
}
