package link

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// mapMaker creates the maps of one program, one after another, and keeps
// the first error: the calls after it create nothing and return nil, so a
// caller makes all its maps and checks err once (and closes what it got).
type mapMaker struct{ err error }

func (mk *mapMaker) make(spec *ebpf.MapSpec) *ebpf.Map {
	if mk.err != nil {
		return nil
	}
	m, err := ebpf.NewMap(spec)
	if err != nil {
		mk.err = fmt.Errorf("map %s: %w", spec.Name, err)
	}
	return m
}

// closeMaps closes the maps that are not nil.
func closeMaps(ms ...*ebpf.Map) {
	for _, m := range ms {
		if m != nil {
			_ = m.Close()
		}
	}
}
