//go:build !linux

package ethtool

// Get needs Linux; elsewhere it reports ErrUnsupported (after checking its
// arguments, so a bad one is still named).
func Get(iface string, f Feature) (bool, error) {
	if err := checkArgs(iface, f, "get"); err != nil {
		return false, err
	}
	return false, &Error{Interface: iface, Op: "get", Feature: f, Err: ErrUnsupported}
}

// Set needs Linux; elsewhere it reports ErrUnsupported.
func Set(iface string, f Feature, on bool) error {
	if err := checkArgs(iface, f, setOp(on)); err != nil {
		return err
	}
	return &Error{Interface: iface, Op: setOp(on), Feature: f, Err: ErrUnsupported}
}

// RxQueues needs Linux; elsewhere it reports ErrUnsupported.
func RxQueues(iface string) (int, error) {
	return 0, &Error{Interface: iface, Op: "get channels", Err: ErrUnsupported}
}
