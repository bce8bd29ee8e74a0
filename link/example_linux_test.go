package link_test

import (
	"context"
	"log"
	"net/netip"

	"github.com/drlb/drlb/link"
)

// A minimal forwarding loop: read a batch, rewrite the MACs, write back.
func ExampleOpen() {
	filter, err := link.VIPFilter([]netip.Addr{netip.MustParseAddr("198.18.0.100")})
	if err != nil {
		log.Fatal(err)
	}
	port, err := link.Open("eth0", link.Config{Filter: filter, QdiscBypass: true})
	if err != nil {
		log.Fatal(err) // e.g. link: eth0: socket: operation not permitted
	}
	defer port.Close()
	self := port.HardwareAddr()
	realServer := []byte{0x02, 0, 0, 0, 0, 0x11}

	ctx := context.Background()
	frames := make([]link.Frame, link.DefaultBatchSize)
	for {
		n, err := port.ReadBatch(ctx, frames)
		if err != nil {
			log.Fatal(err)
		}
		out := frames[:0]
		for _, f := range frames[:n] {
			if len(f.Data) < 14 || string(f.Data[6:12]) == string(self) {
				continue // never forward what a director sent
			}
			copy(f.Data[0:6], realServer) // the IP packet stays untouched
			copy(f.Data[6:12], self)
			out = append(out, f) // Offload goes back out unchanged
		}
		if _, err := port.WriteBatch(out); err != nil {
			log.Print(err)
		}
	}
}
