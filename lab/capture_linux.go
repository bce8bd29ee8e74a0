package lab

import (
	"net"
	"sync"
	"time"

	"github.com/drlb/drlb/testbed"
	"github.com/mdlayher/packet"
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

	mu      sync.Mutex
	frames  []frame
	dropped int
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
		c.conn, err = packet.Listen(ifi, packet.Raw, ethPAll, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	go c.read()
	return c, nil
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

// stop closes the socket and returns what was captured.
func (c *capture) stop() []frame {
	c.conn.Close()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

// name is the capture's file name: "<host>-<iface>.pcap".
func (c *capture) name() string { return c.host.Name + "-" + c.iface + ".pcap" }
