package models_test

import (
	"testing"

	"jwtgate/models"
)

// settingsCompile compiles settings that are expected to be valid.
func settingsCompile(t *testing.T, s models.Settings) *models.Runtime {
	t.Helper()
	rt, probs := models.Compile(s)
	if len(probs) > 0 {
		t.Fatalf("compile: %v", models.Problems(probs))
	}
	return rt
}
