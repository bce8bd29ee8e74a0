package lab

import (
	"errors"
	"strings"
	"testing"
)

func TestScenarioOptions(t *testing.T) {
	for _, sc := range Scenarios() {
		o, err := Options{Scenario: sc.Name, Executable: "drlb"}.withDefaults()
		if err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		if o.RealServers != sc.RealServers || o.Scheduler != sc.Scheduler {
			t.Errorf("%s: lab of %d real servers with %s, want %d with %s", sc.Name, o.RealServers, o.Scheduler, sc.RealServers, sc.Scheduler)
		}
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Scenario: "nosuch", Executable: "drlb"}, "--scenario"},
		{Options{Scenario: Scenarios()[0].Name, Keep: true, Executable: "drlb"}, "--keep"},
	} {
		_, err := tc.o.withDefaults()
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrOptions naming %s", tc.o, err, tc.want)
		}
	}
}
