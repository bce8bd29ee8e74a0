package config

import (
	"os"
	"path/filepath"
	"testing"
)

// Parsing is not on the packet path; these benchmarks only keep an eye on
// reload cost for the example files.
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"drlb.yaml", "rules.ipvsadm"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(name, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFormatIPVSADM(b *testing.B) {
	c, err := Load(filepath.Join("testdata", "drlb.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = FormatIPVSADM(c)
	}
}
