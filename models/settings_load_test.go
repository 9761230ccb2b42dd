package models

import (
	"strings"
	"testing"
)

// TestLoadSettingsMaxInFlight: auth_service.max_in_flight defaults to 32
// (the contract's value, also what settings.yaml says: TestRepoSettingsLoad
// compares it), is read when set, and zero, a negative number or a
// non-number is refused naming the key.
func TestLoadSettingsMaxInFlight(t *testing.T) {
	load := func(yaml string) (Settings, error) {
		return LoadSettings(strings.NewReader(yaml), noEnv)
	}
	s, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	if s.AuthService.MaxInFlight != 32 {
		t.Errorf("default max_in_flight %d, want 32", s.AuthService.MaxInFlight)
	}
	if s, err = load("auth_service: {max_in_flight: 5}\n"); err != nil || s.AuthService.MaxInFlight != 5 {
		t.Errorf("max_in_flight: 5 → %d, %v", s.AuthService.MaxInFlight, err)
	}
	for _, yaml := range []string{
		"auth_service: {max_in_flight: 0}\n",
		"auth_service: {max_in_flight: -1}\n",
		"auth_service: {max_in_flight: many}\n",
	} {
		if _, err := load(yaml); err == nil || !strings.Contains(err.Error(), "auth_service.max_in_flight") {
			t.Errorf("%q: error %v, want one naming auth_service.max_in_flight", yaml, err)
		}
	}
	if _, err := load("auth_service: {max-in-flight: 4}\n"); err == nil || !strings.Contains(err.Error(), "max_in_flight") {
		t.Errorf("max-in-flight: error %v, want a hint naming max_in_flight", err)
	}
}
