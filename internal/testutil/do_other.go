//go:build !linux

package testutil

import (
	"errors"

	"github.com/vishvananda/netns"
)

// Do runs fn inside ns; network namespaces need Linux, so here it only
// reports errors.ErrUnsupported.
func Do(ns netns.NsHandle, fn func() error) error { return errors.ErrUnsupported }
