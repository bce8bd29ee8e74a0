package health

import (
	"os"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// The probes' tests serve and dial on a loopback of their own.
func TestMain(m *testing.M) { os.Exit(testutil.MainInOwnNetNS(m)) }
