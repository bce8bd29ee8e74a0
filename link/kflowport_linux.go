package link

import (
	"net"
	"sync"
	"sync/atomic"
)

// kflowPort implements FlowPort over a port's flowMaps, for the AF_XDP
// port (its XDP program reads them) and each worker of an AF_PACKET
// split group (its socket filter does). The port's lock keeps Close from
// freeing the maps under a call.
type kflowPort struct {
	ifname string
	op     string // the Error's Op: which kernel side forwards
	mac    net.HardwareAddr
	mu     *sync.Mutex
	closed *atomic.Bool
	maps   *flowMaps
	// full: kernel flows left to drlb because the map was full
	// (Stats.KernelFlowsFull).
	full atomic.Uint64
}

// bind points k at its port's name, MAC, lock, closed flag and maps.
func (k *kflowPort) bind(ifname, op string, mac net.HardwareAddr, mu *sync.Mutex, closed *atomic.Bool, maps *flowMaps) {
	k.ifname, k.op, k.mac, k.mu, k.closed, k.maps = ifname, op, mac, mu, closed, maps
}

// lock takes the port's lock for a FlowPort method, or fails (lock
// released) when the port is closed or has no kernel flows.
func (k *kflowPort) lock() error {
	if k.mu == nil { // never bound: the port has no kernel flows
		return newError(k.ifname, "kernel flows", ErrNoKernelFlows)
	}
	k.mu.Lock()
	switch {
	case k.closed.Load():
		k.mu.Unlock()
		return ErrClosed
	case k.maps.cfg == nil:
		k.mu.Unlock()
		return newError(k.ifname, k.op, ErrNoKernelFlows)
	}
	return nil
}

// SetKernelFlowServers implements FlowPort.
func (k *kflowPort) SetKernelFlowServers(on bool, mtu int, servers []KernelServer) error {
	if err := k.lock(); err != nil {
		return err
	}
	defer k.mu.Unlock()
	if err := k.maps.setServers(on, k.mac, mtu, servers); err != nil {
		return newError(k.ifname, k.op, err)
	}
	return nil
}

// UpdateKernelFlows implements FlowPort. The flows that do not fit the
// map are left to drlb and counted in Stats.KernelFlowsFull.
func (k *kflowPort) UpdateKernelFlows(add []KernelFlow, del []KernelFlowKey) error {
	if err := k.lock(); err != nil {
		return err
	}
	defer k.mu.Unlock()
	now, err := monotonicNow()
	if err != nil {
		return newError(k.ifname, k.op, err)
	}
	full, err := k.maps.update(add, del, now)
	k.full.Add(uint64(full))
	if err != nil {
		return newError(k.ifname, k.op, err)
	}
	return nil
}

// KernelFlowCounts implements FlowPort.
func (k *kflowPort) KernelFlowCounts() (map[uint32]KernelCount, error) {
	if err := k.lock(); err != nil {
		return nil, err
	}
	defer k.mu.Unlock()
	c, err := k.maps.counted()
	if err != nil {
		return nil, newError(k.ifname, k.op, err)
	}
	return c, nil
}
