package director

import (
	"os"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// The tests run in a network namespace of their own: a director's health
// monitor dials its real servers (198.18.0.x) from the test process, and
// from the host's namespace those probes would leave by its default
// route. There they find no route and fail at once, which is all the
// tests that run checks need.
func TestMain(m *testing.M) { os.Exit(testutil.MainInOwnNetNS(m)) }
