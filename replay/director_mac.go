package replay

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/wire"
)

// rewindable returns in as something that can be read twice: a file as
// it is, any other reader (a pipe too: an *os.File that cannot seek)
// read into memory.
func rewindable(in io.Reader) (io.ReadSeeker, error) {
	if rs, ok := in.(io.ReadSeeker); ok {
		if _, err := rs.Seek(0, io.SeekCurrent); err == nil {
			return rs, nil
		}
	}
	b, err := io.ReadAll(in)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	return bytes.NewReader(b), nil
}

// learnDirectorMAC finds the director's MAC in a capture taken on its LAN
// interface: the unicast destination MAC that most frames to a VIP were
// sent to, real servers' MACs excepted (a capture also holds the frames
// the director forwarded, addressed to them). Ties go to the MAC seen
// first. It returns nil for a capture without such frames; a broken
// capture is reported by the replay itself, so errors past the header
// end the scan quietly.
func learnDirectorMAC(cfg *config.Config, in io.Reader) (net.HardwareAddr, error) {
	src, err := open(in)
	if err != nil {
		return nil, err
	}
	vipSet := map[netip.Addr]bool{}
	for _, v := range cfg.VIPs() {
		vipSet[v.Unmap()] = true
	}
	rsMACs := map[string]bool{}
	for _, s := range cfg.Services {
		for _, r := range s.RealServers {
			rsMACs[string(r.MAC)] = true
		}
		if s.SorryServer != nil {
			rsMACs[string(s.SorryServer.MAC)] = true
		}
	}
	count := map[string]int{}
	first := map[string]int{} // when each MAC was first seen, for ties
	var best string
	for {
		data, _, err := src.ReadPacketData()
		if err != nil {
			break
		}
		dst, ok := ipDst(data)
		mac := string(data[0:min(6, len(data))])
		if !ok || !vipSet[dst] || data[0]&1 != 0 || rsMACs[mac] {
			continue
		}
		if _, seen := first[mac]; !seen {
			first[mac] = len(first)
		}
		count[mac]++
		if best == "" || count[mac] > count[best] || count[mac] == count[best] && first[mac] < first[best] {
			best = mac
		}
	}
	if best == "" {
		return nil, nil
	}
	return net.HardwareAddr(best), nil
}

// ipDst is the destination address of an IPv4 or IPv6 frame.
func ipDst(b []byte) (netip.Addr, bool) {
	et, off, ok := wire.EtherType(b)
	if !ok {
		return netip.Addr{}, false
	}
	switch {
	case et == wire.EtherTypeIPv4 && len(b) >= off+20:
		return netip.AddrFrom4([4]byte(b[off+16 : off+20])), true
	case et == wire.EtherTypeIPv6 && len(b) >= off+40:
		return netip.AddrFrom16([16]byte(b[off+24 : off+40])), true
	}
	return netip.Addr{}, false
}
