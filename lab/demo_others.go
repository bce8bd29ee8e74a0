//go:build !linux

package lab

import (
	"context"
	"io"
)

// Run needs Linux network namespaces.
func Run(ctx context.Context, opts Options, w io.Writer) error { return ErrUnsupported }

// Down needs Linux network namespaces.
func Down(name string, w io.Writer) error { return ErrUnsupported }
