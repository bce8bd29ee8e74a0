package lab

import (
	"fmt"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// snapLen is the largest frame a capture keeps: veth and GRO hand the
// raw socket super-frames far beyond the MTU (ARCHITECTURE.md#super-frames).
const snapLen = 1 << 16

// writePcap saves frames to path as a classic pcap file (Ethernet link
// type), each with the time it was captured.
func writePcap(path string, frames []frame) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(snapLen, layers.LinkTypeEthernet); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for i := range frames {
		ci := gopacket.CaptureInfo{Timestamp: frames[i].at, CaptureLength: len(frames[i].data), Length: len(frames[i].data)}
		if err := w.WritePacket(ci, frames[i].data); err != nil {
			return fmt.Errorf("%s: frame %d: %w", path, i+1, err)
		}
	}
	return nil
}
