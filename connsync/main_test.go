package connsync

import (
	"os"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// The sync socket's tests open sockets on a loopback of their own.
func TestMain(m *testing.M) { os.Exit(testutil.MainInOwnNetNS(m)) }
