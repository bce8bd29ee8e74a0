//go:build !linux

package testutil

// missing says what this process lacks to run a root-only test: here,
// Linux itself.
func missing() string { return "network namespaces need Linux" }
