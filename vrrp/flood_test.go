package vrrp

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// floodConn is a LAN where the master is dead and other virtual routers'
// packets (another VRID) never stop: a flood (many VRIDs, a storm, an
// attacker) that has one in the socket whenever the runner looks
// (Pending, which lets the reader have it at once) and one every pace
// besides.
type floodConn struct {
	pkt    []byte
	pace   time.Duration
	kick   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (c *floodConn) Recv(b []byte) (int, error) {
	select {
	case <-c.kick:
	case <-time.After(c.pace):
	case <-c.closed:
		return 0, errors.New("closed")
	}
	return copy(b, c.pkt), nil
}

func (c *floodConn) Pending() bool {
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return true
}

func (c *floodConn) Send([]byte) error { return nil }
func (c *floodConn) Close() error      { c.once.Do(func() { close(c.closed) }); return nil }

// TestRunnerTakesOverThroughForeignFlood: packets that are not adverts for
// this virtual router (another VRID here) leave the master-down timer
// alone, so they must not keep a backup from taking over when the master
// is dead: reading what the socket holds before the takeover may defer it
// a little, not for as long as the flood lasts.
func TestRunnerTakesOverThroughForeignFlood(t *testing.T) {
	const ivl = 20 * time.Millisecond
	m, err := NewMachine(Config{VRID: 51, Priority: 100, Interval: ivl, Preempt: true, Self: self, Addrs: []netip.Addr{vip}})
	if err != nil {
		t.Fatal(err)
	}
	c := &floodConn{pkt: advertFrom(t, peer, 52, 200, ivl), pace: time.Millisecond, kick: make(chan struct{}, 1), closed: make(chan struct{})}
	mdi := m.MasterDownInterval() // read before Run: the machine is the runner's then
	master := make(chan struct{})
	var once sync.Once
	r, err := NewRunner(RunnerConfig{Machine: m, Conn: c, Self: self, Logger: slog.New(slog.DiscardHandler),
		OnChange: func(tr Transition) {
			if tr.To == Master {
				once.Do(func() { close(master) })
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, r)
	limit := 5*mdi + maxDefer
	select {
	case <-master:
	case <-time.After(limit):
		st := r.Stats()
		t.Fatalf("still %v %v after start with a dead master (master-down interval %v), %d foreign packets ignored", st.State, limit, mdi, st.Ignored[Reason(ErrVRID)])
	}
}
