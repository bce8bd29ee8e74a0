package lab

import "testing"

// TestScenarioRuns: every scenario listed has a run, and no run is
// unlisted.
func TestScenarioRuns(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range Scenarios() {
		if seen[sc.Name] {
			t.Errorf("scenario %q listed twice", sc.Name)
		}
		seen[sc.Name] = true
		if scenarioRuns[sc.Name] == nil {
			t.Errorf("scenario %q has no run", sc.Name)
		}
		if sc.Title == "" || sc.Shows == "" || sc.RealServers < 1 || sc.Scheduler == "" {
			t.Errorf("scenario %q is not fully described: %+v", sc.Name, sc)
		}
	}
	for name := range scenarioRuns {
		if !seen[name] {
			t.Errorf("run %q is not in the scenario list", name)
		}
	}
}
