package demo_test

import (
	"context"
	"fmt"
	"os"

	"github.com/drlb/drlb/demo"
)

// Run is what `drlb lab` does; the director is the drlb binary itself.
func ExampleRun() {
	exe, _ := os.Executable() // must be drlb: it is run as `drlb run -c CONFIG`
	err := demo.Run(context.Background(), demo.Options{Scheduler: "wrr", Requests: 12, Executable: exe}, os.Stdout)
	if err != nil {
		fmt.Println(err) // without root: needs root (network namespaces): run it with sudo
	}
}
