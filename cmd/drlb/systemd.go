package main

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// sdNotifier tells systemd (Type=notify) where the director is: ready,
// reloading, ready again, stopping. Without NOTIFY_SOCKET (not started by
// systemd) every call is a no-op. See dist/systemd/drlb.service.
//
// A reload can come before the director is ready (drlb ctl --reload or
// SIGHUP while it still sets up) or after it began to stop: READY=1 then
// would tell systemd a start that is still going on has ended, or undo
// STOPPING=1. Such a reload only updates STATUS.
type sdNotifier struct {
	log   *slog.Logger
	phase *atomic.Int32 // sdStarting, sdReady or sdStopping
}

const (
	sdStarting = iota
	sdReady
	sdStopping
)

func newSDNotifier(log *slog.Logger) sdNotifier {
	return sdNotifier{log: log, phase: new(atomic.Int32)}
}

func (n sdNotifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("systemd notification", "state", state, "err", err)
	}
}

// ready: the director answers ARP for the VIPs and forwards.
func (n sdNotifier) ready() {
	if n.phase.CompareAndSwap(sdStarting, sdReady) {
		n.send(daemon.SdNotifyReady + "\nSTATUS=forwarding")
	}
}

// reloading: a reload began; systemd wants the monotonic time with it
// (systemd 253+ for Type=notify-reload, harmless before).
func (n sdNotifier) reloading() {
	if n.phase.Load() != sdReady {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	n.send(fmt.Sprintf("%s\nMONOTONIC_USEC=%d", daemon.SdNotifyReloading, ts.Nano()/int64(time.Microsecond)))
}

// reloaded: the reload ended, applied or refused; the director runs on.
func (n sdNotifier) reloaded(err error) {
	status := "configuration reloaded"
	if err != nil {
		status = "reload refused, previous configuration kept: " + oneLine(err.Error())
	}
	switch n.phase.Load() {
	case sdReady:
		n.send(daemon.SdNotifyReady + "\nSTATUS=forwarding; " + status)
	case sdStarting:
		n.send("STATUS=starting; " + status)
	}
}

// stopping: SIGINT/SIGTERM received.
func (n sdNotifier) stopping() {
	n.phase.Store(sdStopping)
	n.send(daemon.SdNotifyStopping)
}

func oneLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// underJournald reports stderr going to the journal (systemd sets
// JOURNAL_STREAM to its device:inode): journald stamps every line itself.
func underJournald() bool {
	v := os.Getenv("JOURNAL_STREAM")
	if v == "" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		return false
	}
	return v == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
