package doctor

import (
	"errors"

	"github.com/drlb/drlb/internal/ethtool"
)

// Offloads asks the kernel (SIOCETHTOOL) which offloads are on, as
// `ethtool -k IFACE` shows them, named as ethtool names them. Offloads the
// device cannot report are left out.
func (System) Offloads(name string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, f := range ethtool.Features {
		on, err := ethtool.Get(name, f)
		if errors.Is(err, ethtool.ErrNotSupported) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[f.String()] = on
	}
	return out, nil
}
