package lab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/drlb/drlb/testbed"
)

// directorProc is `drlb run -c CONFIG` running in the director's namespace.
type directorProc struct {
	cmd  *exec.Cmd
	log  string // its stdout (trace) and stderr (logs)
	done chan struct{}
	err  error
}

// startDirector forks `drlb run -c cfgPath extra...` from a thread inside
// director h's namespace, so the child lives there. Its output goes
// straight to logPath (a file, not a pipe through this process), so a
// detached director of a kept lab keeps logging after this process exits.
// The file is emptied first: a new director, a new log (waitLog counts
// lines in it). detach puts it in its own session: Ctrl-C in this
// terminal no longer reaches it.
func startDirector(l *testbed.Lab, h *testbed.Host, exe, cfgPath, logPath string, detach bool, extra ...string) (*directorProc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	// The label lets drlb lab down find the director even if the lab's
	// namespaces were removed under it.
	args := append([]string{"run", "-c", cfgPath, "-label", directorLabel(l.Name)}, extra...)
	p := &directorProc{cmd: exec.Command(exe, args...), log: logPath, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: detach}
	if err := l.Do(h, p.cmd.Start); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", h.Name, exe, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// logs returns what the director has written so far.
func (p *directorProc) logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// waitLog waits until the director's output holds n lines containing s.
func (p *directorProc) waitLog(s string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for strings.Count(p.logs(), s) < n {
		select {
		case <-p.done:
			return fmt.Errorf("the director exited (%v) before logging %q %d times; its log (%s):\n%s", p.err, s, n, p.log, p.logs())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the director did not log %q %d times within %v; its log (%s):\n%s", s, n, timeout, p.log, p.logs())
		}
	}
	return nil
}

// stop ends the director with SIGTERM (it stops cleanly on it) and kills
// it if it has not gone within 5 s.
func (p *directorProc) stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("the director did not stop within 5s of SIGTERM; killed")
	}
}
