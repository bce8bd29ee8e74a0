// Package osthread runs a function on an OS thread of its own that is
// thrown away afterwards, for work that changes the thread itself (entering
// a network namespace with setns): nothing of it can leak to other
// goroutines, and the main thread is never the one changed.
package osthread
