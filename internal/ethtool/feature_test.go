package ethtool

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseFeature(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Feature
		err  error
	}{
		{"gro", GRO, nil},
		{"generic-receive-offload", GRO, nil},
		{"gso", GSO, nil},
		{"generic-segmentation-offload", GSO, nil},
		{"tso", TSO, nil},
		{"tcp-segmentation-offload", TSO, nil},
		{"rx", RxChecksum, nil},
		{"rx-checksumming", RxChecksum, nil},
		{"tx", TxChecksum, nil},
		{"tx-checksumming", TxChecksum, nil},
		{"", 0, ErrUnknownFeature},
		{"GRO", 0, ErrUnknownFeature},
		{"lro", 0, ErrUnknownFeature},
		{"gro ", 0, ErrUnknownFeature},
	} {
		got, err := ParseFeature(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseFeature(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
			t.Errorf("ParseFeature(%q): error %q does not name the input", tc.in, err)
		}
	}
}

func TestFeatureString(t *testing.T) {
	for _, f := range Features {
		back, err := ParseFeature(f.String())
		if err != nil || back != f {
			t.Errorf("ParseFeature(%v.String()) = %v, %v", f, back, err)
		}
	}
	for _, f := range []Feature{0, 6, 255} {
		if got, want := f.String(), fmt.Sprintf("Feature(%d)", f); got != want {
			t.Errorf("Feature(%d).String() = %q, want %q", uint8(f), got, want)
		}
	}
}

// TestBadArguments covers what is refused before any system call, on every OS.
func TestBadArguments(t *testing.T) {
	for _, tc := range []struct {
		iface string
		f     Feature
		err   error
	}{
		{"eth0", 0, ErrUnknownFeature},
		{"eth0", 99, ErrUnknownFeature},
		{"", GRO, ErrInterfaceName},
		{"a-name-of-16-chr", GRO, ErrInterfaceName},
		{"eth\x000", GRO, ErrInterfaceName},
		{"a/b", GRO, ErrInterfaceName},
	} {
		_, gerr := Get(tc.iface, tc.f)
		serr := Set(tc.iface, tc.f, true)
		for _, err := range []error{gerr, serr} {
			var e *Error
			if !errors.Is(err, tc.err) || !errors.As(err, &e) || e.Interface != tc.iface {
				t.Errorf("(%q, %v): %v; want an *Error naming the interface, wrapping %v", tc.iface, tc.f, err, tc.err)
			}
		}
	}
}

func TestErrorUnwrap(t *testing.T) {
	inner := errors.New("errno")
	e := &Error{Interface: "eth0", Op: "set on", Feature: GRO, Err: inner, sentinel: ErrNotPermitted}
	if !errors.Is(e, inner) || !errors.Is(e, ErrNotPermitted) {
		t.Errorf("%v does not match both its errno and its sentinel", e)
	}
	if got, want := e.Error(), "ethtool: eth0: set on generic-receive-offload: errno"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func FuzzParseFeature(f *testing.F) {
	for _, s := range []string{"gro", "generic-receive-offload", "tx", "", "GRO", "\x00", "tso\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFeature(s)
		if err != nil {
			if !errors.Is(err, ErrUnknownFeature) || got != 0 {
				t.Fatalf("ParseFeature(%q) = %v, %v", s, got, err)
			}
			return
		}
		if !got.valid() || (got.String() != s && features[got].short != s) {
			t.Fatalf("ParseFeature(%q) = %v", s, got)
		}
	})
}

func ExampleParseFeature() {
	f, err := ParseFeature("gro")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f)
	_, err = ParseFeature("lro")
	fmt.Println(errors.Is(err, ErrUnknownFeature))
	// Output:
	// generic-receive-offload
	// true
}
