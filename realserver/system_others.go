//go:build !linux

package realserver

import (
	"errors"
	"net/netip"
)

var errUnsupported = errors.New("real-server setup needs Linux")

type otherSystem struct{ ProcSys }

// NewSystem returns a System whose address operations fail off Linux.
func NewSystem(procSys string, _ any) System { return otherSystem{ProcSys(procSys)} }

func (otherSystem) LinkExists(string) (bool, error)            { return false, errUnsupported }
func (otherSystem) HasAddr(string, netip.Prefix) (bool, error) { return false, errUnsupported }
func (otherSystem) AddAddr(string, netip.Prefix) error         { return errUnsupported }
func (otherSystem) DelAddr(string, netip.Prefix) error         { return errUnsupported }
