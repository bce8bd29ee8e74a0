package testbed

import (
	"os"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// TestServeEcho serves and dials on a loopback of the tests' own; the
// labs the other tests build are namespaces of their own anyway.
func TestMain(m *testing.M) { os.Exit(testutil.MainInOwnNetNS(m)) }
