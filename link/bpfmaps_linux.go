package link

import (
	"errors"
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

// pruneMap deletes from m (keys K, values V) every key keep refuses; keys
// are collected first, since deleting while iterating restarts the walk.
// Errors name what (the map's role).
func pruneMap[K, V any](m *ebpf.Map, what string, keep func(K) bool) error {
	var (
		k    K
		v    V
		dels []K
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !keep(k) {
			dels = append(dels, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for i := range dels {
		if err := m.Delete(&dels[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}
