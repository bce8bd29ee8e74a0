package testbed_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/drlb/drlb/testbed"
)

// Build a lab, start the real servers' services and fetch a page from rs1
// through the router, as an end-to-end test would (needs root).
func Example() {
	ctx := context.Background()
	l, err := testbed.New(ctx, testbed.Options{RealServers: 2})
	if err != nil {
		log.Fatal(err) // wraps testbed.ErrNotRoot when not root
	}
	defer l.Close()              // also on panic
	stop := l.CloseOnSignal(ctx) // and on Ctrl-C
	defer stop()

	if err := l.StartServices(ctx); err != nil {
		log.Print(err) // not log.Fatal: it would skip the deferred Close
		return
	}
	c := l.HTTPClient(l.Client)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + l.RealServers[0].IPv4.String() + "/")
	if err != nil {
		log.Print(err)
		return
	}
	defer resp.Body.Close()
	name, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s", name) // "rs1\n"
}
