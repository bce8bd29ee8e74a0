package main

import (
	"context"
	"io"
)

func runSchedule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usageError("not implemented yet")
}
