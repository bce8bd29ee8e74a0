package ethtool

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// TestGetLoopback reads every feature of lo, which needs no privilege and
// changes nothing.
func TestGetLoopback(t *testing.T) {
	for _, f := range Features {
		if _, err := Get("lo", f); err != nil && !errors.Is(err, ErrNotSupported) {
			t.Errorf("Get(lo, %v): %v", f, err)
		}
	}
}

func TestNoSuchInterface(t *testing.T) {
	_, err := Get("drlbnosuch0", GRO)
	var e *Error
	if !errors.Is(err, ErrNoInterface) || !errors.As(err, &e) || e.Interface != "drlbnosuch0" || e.Feature != GRO {
		t.Errorf("Get on a missing interface: %v; want an *Error naming it, wrapping ErrNoInterface", err)
	}
}

// TestSetVeth works on a veth pair ve0/ve1 inside a new network namespace
// of the test's own: both go when the test ends, and nothing is configured
// outside it.
func TestSetVeth(t *testing.T) {
	ns := testutil.NewNS(t)
	testutil.Veth(t, testutil.End{NS: ns, Name: "ve0"}, testutil.End{NS: ns, Name: "ve1"})
	err := testutil.Do(ns, func() error {
		// Each feature both ways, and back to where it was.
		for _, f := range []Feature{GRO, GSO, TSO, TxChecksum, RxChecksum} {
			was, err := Get("ve0", f)
			if err != nil {
				return err
			}
			for _, on := range []bool{!was, was} {
				if err := Set("ve0", f, on); err != nil {
					return err
				}
				if got, err := Get("ve0", f); err != nil || got != on {
					return fmt.Errorf("after Set(ve0, %v, %v): Get = %v, %v", f, on, got, err)
				}
			}
		}
		// The peer is untouched by ve0's settings.
		if err := Set("ve0", GRO, true); err != nil {
			return err
		}
		if on, err := Get("ve1", GRO); err != nil || on {
			return fmt.Errorf("ve1 GRO = %v, %v after setting it on ve0 only; want off (the veth default)", on, err)
		}
		// TSO needs tx-checksumming: with it off the kernel keeps TSO off,
		// and Set says so.
		if err := Set("ve0", TxChecksum, false); err != nil {
			return err
		}
		if on, err := Get("ve0", TSO); err != nil || on {
			return fmt.Errorf("TSO = %v, %v with tx-checksumming off; want off", on, err)
		}
		if err := Set("ve0", TSO, true); !errors.Is(err, ErrKept) {
			return fmt.Errorf("Set(TSO on) with tx-checksumming off: %v; want ErrKept", err)
		}
		if err := Set("ve0", TxChecksum, true); err != nil {
			return err
		}
		if on, err := Get("ve0", TSO); err != nil || !on {
			return fmt.Errorf("TSO = %v, %v once tx-checksumming is back on; want on again", on, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRxQueues reads a veth's receive queues in use, as `ethtool -l`
// shows them, and names a missing interface.
func TestRxQueues(t *testing.T) {
	ns := testutil.NewNS(t)
	testutil.Veth(t, testutil.End{NS: ns, Name: "ve0", Queues: 3}, testutil.End{NS: ns, Name: "ve1", Queues: 1})
	err := testutil.Do(ns, func() error {
		for _, c := range []struct {
			iface string
			want  int
		}{{"ve0", 3}, {"ve1", 1}} {
			if n, err := RxQueues(c.iface); err != nil || n != c.want {
				return fmt.Errorf("RxQueues(%s) = %d, %v; want %d", c.iface, n, err, c.want)
			}
		}
		if _, err := RxQueues("nosuch0"); !errors.Is(err, ErrNoInterface) || err.Error() != "ethtool: nosuch0: get channels: no such device (no such interface)" {
			return fmt.Errorf("RxQueues on a missing interface: %v; want ErrNoInterface, naming it once", err)
		}
		if _, err := RxQueues("a/b"); !errors.Is(err, ErrInterfaceName) || strings.Contains(err.Error(), "rx-checksum") {
			return fmt.Errorf("RxQueues on a bad name: %v; want ErrInterfaceName, naming no feature", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
