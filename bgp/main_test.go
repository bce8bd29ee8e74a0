package bgp

import (
	"os"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// The speaker's session test runs GoBGP against GoBGP on a loopback of
// its own.
func TestMain(m *testing.M) { os.Exit(testutil.MainInOwnNetNS(m)) }
