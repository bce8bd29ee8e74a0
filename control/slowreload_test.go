package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestReloadOutlastsClientTimeout: drlb ctl --reload is the systemd
// unit's ExecReload, and waits for the director's verdict however long
// the reload takes (a large file, big maglev tables, one queued behind a
// SIGHUP's): with the 10 s of every other request it gave up, `systemctl
// reload` failed with "did not answer" and the director applied the file
// all the same. The server's ReadTimeout must not cut it either.
func TestReloadOutlastsClientTimeout(t *testing.T) {
	savedClient, savedRequest := clientTimeout, requestTimeout
	clientTimeout, requestTimeout = 200*time.Millisecond, 200*time.Millisecond
	defer func() { clientTimeout, requestTimeout = savedClient, savedRequest }()
	reload := func() error {
		time.Sleep(600 * time.Millisecond) // beyond both
		return errors.New("drlb.yaml:3:5: interface: restart needed")
	}
	path := serveFake(t, &fakeEditor{cfg: fixtureConfig(t)}, reload)
	res, err := Reload(context.Background(), path)
	if err != nil {
		t.Fatalf("a reload slower than the client's timeout: %v, want the director's verdict", err)
	}
	if res.Exit == 0 || !strings.Contains(res.Error, "restart needed") {
		t.Errorf("verdict %+v, want the refusal", res)
	}
}
