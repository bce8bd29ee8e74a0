package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// sdNotifier tells systemd (Type=notify) where the director is: ready,
// reloading, ready again, stopping. Without NOTIFY_SOCKET (not started by
// systemd) every call is a no-op. See dist/systemd/drlb.service.
type sdNotifier struct{ log *slog.Logger }

func (n sdNotifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("systemd notification", "state", state, "err", err)
	}
}

// ready: the director answers ARP for the VIPs and forwards.
func (n sdNotifier) ready() { n.send(daemon.SdNotifyReady + "\nSTATUS=forwarding") }

// reloading: a SIGHUP was received; systemd wants the monotonic time with
// it (systemd 253+ for Type=notify-reload, harmless before).
func (n sdNotifier) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	n.send(fmt.Sprintf("%s\nMONOTONIC_USEC=%d", daemon.SdNotifyReloading, ts.Nano()/int64(time.Microsecond)))
}

// reloaded: the reload ended, applied or refused; the director runs on.
func (n sdNotifier) reloaded(err error) {
	status := "STATUS=forwarding; configuration reloaded"
	if err != nil {
		status = "STATUS=forwarding; reload refused, previous configuration kept: " + oneLine(err.Error())
	}
	n.send(daemon.SdNotifyReady + "\n" + status)
}

// stopping: SIGINT/SIGTERM received.
func (n sdNotifier) stopping() { n.send(daemon.SdNotifyStopping) }

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
