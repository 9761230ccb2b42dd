package models

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPathsSettingsKeys: routes[].body_timeout defaults to 60s, 0s turns
// it off, a negative one is refused naming the key; the same for
// auth_service.body_timeout (default 10s); allow_unusual_paths defaults to
// false; settings.yaml documents all three with their defaults.
func TestPathsSettingsKeys(t *testing.T) {
	load := func(yaml string) (Settings, error) {
		return LoadSettings(strings.NewReader(yaml), noEnv)
	}
	s, err := load(`
routes:
  - {path: /a/, upstream: "http://127.0.0.1:1"}
  - {path: /b/, upstream: "http://127.0.0.1:1", body_timeout: 0s, allow_unusual_paths: true}
  - {path: /c/, upstream: "http://127.0.0.1:1", body_timeout: 300ms}
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := []time.Duration{s.Routes[0].BodyDeadline(), s.Routes[1].BodyDeadline(), s.Routes[2].BodyDeadline()}; got[0] != 60*time.Second || got[1] != 0 || got[2] != 300*time.Millisecond {
		t.Fatalf("body deadlines %v", got)
	}
	if s.Routes[0].AllowUnusualPaths || !s.Routes[1].AllowUnusualPaths {
		t.Fatal("allow_unusual_paths not read")
	}
	if w := s.Warnings(); !slices.ContainsFunc(w, func(m string) bool { return strings.HasPrefix(m, "routes[1] (/b/): allow_unusual_paths") }) {
		t.Errorf("no warning for allow_unusual_paths: %q", w)
	}
	if s.AuthService.BodyTimeout != 10*time.Second {
		t.Fatalf("auth_service.body_timeout default %s", s.AuthService.BodyTimeout)
	}
	for yaml, key := range map[string]string{
		"routes:\n  - {path: /a/, upstream: \"http://127.0.0.1:1\", body_timeout: -1s}\n": "routes[0].body_timeout",
		"auth_service: {body_timeout: -1s}\n":                                             "auth_service.body_timeout",
	} {
		if _, err := load(yaml); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: error %v, want one naming %s", yaml, err, key)
		}
	}

	f, err := os.Open("../settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	repo, err := LoadSettings(f, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if r := repo.Routes[0]; r.BodyTimeout == nil || *r.BodyTimeout != DefaultBodyTimeout || r.AllowUnusualPaths {
		t.Fatalf("settings.yaml example route: body_timeout %v, allow_unusual_paths %v", r.BodyTimeout, r.AllowUnusualPaths)
	}
}
