package replay

import (
	"bytes"
	"os"
	"testing"
)

// FuzzRun: no capture file, however broken (pcap or pcapng, any header,
// record lengths, link types, interfaces), crashes a replay; with or
// without the director's MAC given (learning it reads the file twice).
func FuzzRun(f *testing.F) {
	for _, name := range []string{"mixed"} {
		b, err := os.ReadFile(scenarioPath(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4096)], false)
	}
	// A pcapng section header, an Ethernet interface, one frame.
	f.Add([]byte("\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x1c\x00\x00\x00"+
		"\x01\x00\x00\x00\x14\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x14\x00\x00\x00"+
		"\x06\x00\x00\x00\x30\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0e\x00\x00\x00\x0e\x00\x00\x00"+
		"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00\x00\x00\x30\x00\x00\x00"), true)
	cfg := loadConfig(f, "rr")
	cfg.MaxConns = 1000 // a table built per run: small, so runs are quick
	f.Fuzz(func(t *testing.T, capture []byte, learn bool) {
		opts := Options{MAC: directorMAC, MTU: 1500, Listing: &bytes.Buffer{}}
		if learn {
			opts.MAC = nil
		}
		Run(cfg, bytes.NewReader(capture), &bytes.Buffer{}, opts)
	})
}
