package tests

import (
	"testing"

	"jwtgate/models"
)

// settingsRuntime compiles settings that are expected to be valid, as serve
// does before wiring the gateway.
func settingsRuntime(t testing.TB, s models.Settings) *models.Runtime {
	t.Helper()
	rt, probs := models.Compile(s)
	if len(probs) > 0 {
		t.Fatalf("settings: %v", models.Problems(probs))
	}
	return rt
}
