package testbed

import "errors"

// Sentinel errors; check them with errors.Is.
var (
	// ErrNotRoot: building or cleaning a lab needs root.
	ErrNotRoot = errors.New("root is needed")
	// ErrClosed: the lab was closed.
	ErrClosed = errors.New("lab is closed")
	// ErrOptions: an Options field is out of range.
	ErrOptions = errors.New("invalid lab options")
	// ErrUnsupported: labs exist only on Linux.
	ErrUnsupported = errors.New("network-namespace labs need Linux")
	// ErrServicesStarted: StartServices was already called.
	ErrServicesStarted = errors.New("lab services already started")
)
