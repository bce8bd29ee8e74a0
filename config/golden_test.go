package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestGolden parses each example under testdata/ and compares the result,
// rendered by dump, and its FormatIPVSADM text with the golden files
// (go test -update rewrites them).
func TestGolden(t *testing.T) {
	for _, name := range []string{"drlb.yaml", "rules.ipvsadm"} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".golden", dump(c))
			golden(t, name+".ipvsadm.golden", FormatIPVSADM(c))
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !os.IsNotExist(err) {
		t.Fatalf("Load of a missing file: %v, want a not-exist error", err)
	}
}
