package testutil

import "github.com/drlb/drlb/internal/osthread"

// onSpareThread runs fn on an OS thread of its own that is thrown away
// afterwards and is never the main one (see osthread.Run).
func onSpareThread(fn func()) { osthread.Run(fn) }
