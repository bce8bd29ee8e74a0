package lab

import "context"

// scenarioRuns holds each scenario's run, by name; every entry of
// scenarios has one (TestScenarioRuns).
var scenarioRuns = map[string]func(*runner, context.Context) error{}
