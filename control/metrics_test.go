package control

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// scrapeMetrics is what /metrics serves for s.
func scrapeMetrics(t *testing.T, s Snapshot) string {
	t.Helper()
	srv := httptest.NewServer(MetricsHandler(func(bool) Snapshot { return s }))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	return string(body)
}

// TestKernelFlowsMetrics: drlb_kernel_flows_held is 1 while kernel flows
// are held, 0 while they run, and absent without them.
func TestKernelFlowsMetrics(t *testing.T) {
	for _, tc := range []struct {
		state, want string
	}{
		{"", ""},
		{KernelFlowsOn, "drlb_kernel_flows_held 0"},
		{KernelFlowsHeld, "drlb_kernel_flows_held 1"},
	} {
		s := fixtureSnapshot()
		s.KernelFlows = tc.state
		body := scrapeMetrics(t, s)
		if tc.want == "" {
			if strings.Contains(body, "drlb_kernel_flows_held") {
				t.Errorf("kernel flows off: the metrics have drlb_kernel_flows_held")
			}
		} else if !strings.Contains(body, tc.want+"\n") {
			t.Errorf("kernel flows %q: the metrics lack %s", tc.state, tc.want)
		}
	}
}
