//go:build !linux

package conntable

// adviseHugePages is a no-op where transparent huge pages do not exist.
func adviseHugePages([]Entry) {}
