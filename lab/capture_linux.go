package lab

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/drlb/drlb/testbed"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// maxFrames bounds one capture's memory (a lab run sees a few hundred).
const maxFrames = 100000

// ethPAll is ETH_P_ALL: every frame, both directions, as tcpdump sees them.
const ethPAll = 0x0003

// capture records every frame on one interface of one host, like tcpdump.
type capture struct {
	host  *testbed.Host
	iface string
	conn  *packet.Conn
	done  chan struct{}

	mu     sync.Mutex
	frames []frame
	// dropped counts frames over maxFrames, kernelDrops those the kernel
	// could not queue to the socket (PACKET_STATISTICS, read at stop):
	// frames that happened but are not in frames.
	dropped, kernelDrops int
}

// startCapture opens a raw socket on h's interface. The socket is made
// inside h's namespace (testbed.Do) and stays there; reading it from any
// goroutine is fine.
func startCapture(l *testbed.Lab, h *testbed.Host, iface string) (*capture, error) {
	c := &capture{host: h, iface: iface, done: make(chan struct{})}
	err := l.Do(h, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		if c.conn, err = packet.Listen(ifi, packet.Raw, ethPAll, nil); err != nil {
			return err
		}
		return c.bigReceiveBuffer()
	})
	if err != nil {
		return nil, err
	}
	go c.read()
	return c, nil
}

// captureBuffer is each capture socket's receive buffer. The default
// (about 200 KiB) overflowed under the mtu scenario's uploads (GRO
// super-frames through veth) on a loaded machine, and a capture that
// misses frames fails the run (captures.lost).
const captureBuffer = 16 << 20

// bigReceiveBuffer gives the socket captureBuffer bytes, past rmem_max
// (SO_RCVBUFFORCE: the lab runs as root).
func (c *capture) bigReceiveBuffer() error {
	rc, err := c.conn.SyscallConn()
	if err != nil {
		c.conn.Close()
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, captureBuffer)
	}); err != nil {
		serr = err
	}
	if serr != nil {
		c.conn.Close()
		return fmt.Errorf("capture on %s: SO_RCVBUFFORCE: %w", c.iface, serr)
	}
	return nil
}

func (c *capture) read() {
	defer close(c.done)
	buf := make([]byte, snapLen)
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		at := time.Now()
		c.mu.Lock()
		if len(c.frames) < maxFrames {
			c.frames = append(c.frames, parseFrame(at, append([]byte(nil), buf[:n]...)))
		} else {
			c.dropped++
		}
		c.mu.Unlock()
	}
}

// sofar returns a copy of what was captured until now, while the capture
// runs.
func (c *capture) sofar() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.frames...)
}

// stop closes the socket and returns what was captured.
func (c *capture) stop() []frame {
	if st, err := c.conn.Stats(); err == nil {
		c.mu.Lock()
		c.kernelDrops += int(st.Drops)
		c.mu.Unlock()
	}
	c.conn.Close()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

// lost is how many frames on the wire the capture does not hold.
func (c *capture) lost() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped + c.kernelDrops
}

// name is the capture's file name: "<host>-<iface>.pcap".
func (c *capture) name() string { return c.host.Name + "-" + c.iface + ".pcap" }

// captures is one capture on every interface of the lab, started and
// stopped together: what a phase of a run saw.
type captures struct {
	caps   []*capture
	frames map[*capture][]frame
}

// startCaptures starts capturing on every interface of the lab: the
// client's, both of the router's, each director's and each real server's.
// On error it stops those it started.
func startCaptures(l *testbed.Lab) (*captures, error) {
	type port struct {
		h     *testbed.Host
		iface string
	}
	ports := []port{{l.Client, l.Client.Iface}, {l.Router, l.RouterUplink.Iface}, {l.Router, l.Router.Iface}}
	for _, d := range l.Directors {
		ports = append(ports, port{d, d.Iface})
	}
	for _, rs := range l.RealServers {
		ports = append(ports, port{rs, rs.Iface})
	}
	cs := &captures{frames: map[*capture][]frame{}}
	for _, p := range ports {
		c, err := startCapture(l, p.h, p.iface)
		if err != nil {
			cs.stop()
			return nil, fmt.Errorf("capturing on %s %s: %w", p.h.Name, p.iface, err)
		}
		cs.caps = append(cs.caps, c)
	}
	return cs, nil
}

// stop ends every capture that is still running; calling it again does
// nothing.
func (cs *captures) stop() {
	for _, c := range cs.caps {
		if _, done := cs.frames[c]; !done {
			cs.frames[c] = c.stop()
		}
	}
}

// lost is how many frames the captures missed (after stop): a check that
// counts frames, or finds none, means nothing over a capture with gaps.
func (cs *captures) lost() int {
	n := 0
	for _, c := range cs.caps {
		n += c.lost()
	}
	return n
}

// settle waits for frames in flight to reach the captures, then stops them.
func (cs *captures) settle() {
	time.Sleep(200 * time.Millisecond)
	cs.stop()
}

// of returns what was captured on h's iface (after stop).
func (cs *captures) of(h *testbed.Host, iface string) []frame {
	for _, c := range cs.caps {
		if c.host == h && c.iface == iface {
			return cs.frames[c]
		}
	}
	return nil
}

// sofar returns what was captured on h's iface until now, while the
// captures run (a copy).
func (cs *captures) sofar(h *testbed.Host, iface string) []frame {
	for _, c := range cs.caps {
		if c.host == h && c.iface == iface {
			return c.sofar()
		}
	}
	return nil
}

// names lists the captured interfaces: "client eth0, router eth1, ...".
func (cs *captures) names() string {
	var s []string
	for _, c := range cs.caps {
		s = append(s, c.host.Name+" "+c.iface)
	}
	return strings.Join(s, ", ")
}
