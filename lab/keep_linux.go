package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drlb/drlb/testbed"
)

// netnsDir is where named namespaces live (as made by `ip netns add`).
const netnsDir = "/var/run/netns"

// labExists reports whether a lab named name has namespaces.
func labExists(name string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, name+"-director"))
	return err == nil
}

// labNamespaces lists the namespaces of the lab named name.
func labNamespaces(name string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// startServers runs `drlb lab serve` detached in each real server's
// namespace, for a kept lab, and waits until each answers on its own
// address. stop ends them (SIGTERM, then SIGKILL after 5 s): the run calls
// it when it tears the lab down after all (a failed step, Ctrl-C), since
// detached processes would outlive it. On an error it has stopped those
// it started.
func startServers(ctx context.Context, l *testbed.Lab, exe, dir string) (stop func() error, err error) {
	var pids []int
	stop = func() error {
		terminate(pids, nil)
		return nil
	}
	defer func() {
		if err != nil {
			_ = stop()
		}
	}()
	for _, rs := range l.RealServers {
		args := []string{"lab", "serve", "-name", rs.Name, "-lab", l.Name}
		for _, a := range []netip.Addr{l.VIP, l.VIP6, rs.IPv4, rs.IPv6} {
			args = append(args, "-addr", a.String())
		}
		logf, err := os.OpenFile(filepath.Join(dir, rs.Name+"-serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = l.Do(rs, cmd.Start)
		logf.Close()
		if err != nil {
			return nil, fmt.Errorf("starting the services of %s: %w", rs.Name, err)
		}
		pids = append(pids, cmd.Process.Pid)
		go func() { _ = cmd.Wait() }() // reap it if it dies while we run
	}
	for _, rs := range l.RealServers {
		addr := netip.AddrPortFrom(rs.IPv4, testbed.HTTPPort).String()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := l.Dial(ctx, l.Router, "tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("the services of %s do not answer on %s: %w", rs.Name, addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return stop, nil
}

// Down removes a kept lab: it stops every process still running in its
// namespaces (the director, the real servers' services, shells an operator
// opened with ip netns exec), then removes the namespaces. A lab that is
// not there is not an error.
func Down(name string, w io.Writer) error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if name == "" {
		name = KeepName
	}
	nss, err := labNamespaces(name)
	if err != nil {
		return err
	}
	// The lab's processes: those in its namespaces, and those tagged with
	// its name on their command line (found even if the namespaces were
	// removed under them).
	pids := taggedPIDs(name)
	for _, ns := range nss {
		p, err := testbed.PIDsIn(ns)
		if err != nil {
			return err
		}
		pids = append(pids, p...)
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)
	if len(nss) == 0 && len(pids) == 0 {
		fmt.Fprintf(w, "no lab named %q is up (no namespace %s-* under %s): nothing to remove\n", name, name, netnsDir)
		return nil
	}
	terminate(pids, func(sig syscall.Signal, pid int) {
		if sig == syscall.SIGTERM {
			fmt.Fprintf(w, "kill -TERM %d    # %s\n", pid, cmdline(pid))
		} else {
			fmt.Fprintf(w, "kill -KILL %d    # did not stop within 5s\n", pid)
		}
	})
	for _, ns := range nss {
		fmt.Fprintf(w, "ip netns delete %s\n", ns)
	}
	if err := testbed.Cleanup(name + "-"); err != nil {
		return err
	}
	fmt.Fprintf(w, "lab %q removed\n", name)
	return nil
}

// directorLabel is the -label drlb lab gives its director.
func directorLabel(lab string) string { return "drlb-lab:" + lab }

// taggedPIDs lists processes started for the lab named name: a director
// run with -label drlb-lab:NAME, or `drlb lab serve ... -lab NAME`.
func taggedPIDs(name string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if (args[i] == "-label" && args[i+1] == directorLabel(name)) || (args[i] == "-lab" && args[i+1] == name) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// terminate stops pids: SIGTERM, then SIGKILL for those still running
// 5 s later. say, if set, is told each signal before it is sent.
func terminate(pids []int, say func(sig syscall.Signal, pid int)) {
	send := func(sig syscall.Signal, pid int) {
		if say != nil {
			say(sig, pid)
		}
		_ = syscall.Kill(pid, sig)
	}
	for _, pid := range pids {
		send(syscall.SIGTERM, pid)
	}
	waitGone(pids, 5*time.Second)
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			send(syscall.SIGKILL, pid)
		}
	}
}

// waitGone waits until none of pids exists, at most timeout.
func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		alive := false
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !zombie(pid) {
				alive = true
			}
		}
		if !alive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zombie reports a process that has exited but was not reaped (its parent,
// a `drlb lab --keep`, may be gone: then init reaps it soon).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// cmdline is a process's command line, for messages.
func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
