package models

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

// TestRepoSettingsLoad: the settings.yaml shipped in the repository is valid
// and equals the embedded defaults plus its example route.
func TestRepoSettingsLoad(t *testing.T) {
	f, err := os.Open("../settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := LoadSettings(f, noEnv)
	if err != nil {
		t.Fatalf("repo settings.yaml: %v", err)
	}
	d := DefaultSettings()
	if s.Listen != d.Listen || s.AuthService != d.AuthService || s.Database != d.Database || !reflect.DeepEqual(s.Users, d.Users) {
		t.Fatalf("repo settings.yaml disagrees with the defaults:\n%+v\n%+v", s, d)
	}
	if rt, probs := Compile(s); len(probs) > 0 || len(rt.Routes) != 1 || rt.Routes[0].Rule == nil {
		t.Fatalf("example route not compiled with its rule: %v %+v", probs, s.Routes)
	}
}

func TestLoadSettingsEnvOverrides(t *testing.T) {
	env := map[string]string{
		EnvListen: "127.0.0.1:9999", EnvAuthServiceURL: "http://127.0.0.1:7000", EnvDatabaseDSN: "other.db",
	}
	s, err := LoadSettings(strings.NewReader("listen: 127.0.0.1:1\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.Listen != "127.0.0.1:9999" || s.AuthService.URL != "http://127.0.0.1:7000" || s.Database.DSN != "other.db" {
		t.Fatalf("overrides not applied: %+v", s)
	}
}

func TestLoadSettingsKeepsDefaults(t *testing.T) {
	s, err := LoadSettings(strings.NewReader("auth_service:\n  timeout: 2s\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s.AuthService.Timeout != 2*time.Second || s.AuthService.VerifyPath != "/auth/token/verify/" || s.Auth.Cache.TTL != 30*time.Second {
		t.Fatalf("defaults lost: %+v", s.AuthService)
	}
}

// TestLoadSettingsErrorsNameTheKey: every bad value is reported with its key.
func TestLoadSettingsErrorsNameTheKey(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown top key", "listn: x\n", `unknown key "listn"`},
		{"unknown nested key", "auth:\n  cache:\n    tll: 3s\n", "auth.cache.tll"},
		{"bad duration", "auth:\n  cache:\n    ttl: soon\n", "auth.cache.ttl (line 3)"},
		{"negative duration", "auth_service:\n  timeout: -1s\n", "auth_service.timeout"},
		{"bad url", "auth_service:\n  url: ftp://x\n", "auth_service.url"},
		{"path without slash", "auth_service:\n  verify_path: verify\n", "auth_service.verify_path"},
		{"verify mode", "auth:\n  verify: sometimes\n", "auth.verify"},
		{"local without keys", "auth:\n  verify: local\n", "auth.local"},
		{"driver", "database:\n  driver: mysql\n", "database.driver"},
		{"log level", "log:\n  level: loud\n", "log.level"},
		{"route path", "routes:\n  - path: api\n    upstream: http://127.0.0.1:1\n", "routes[0].path"},
		{"route upstream", "routes:\n  - path: /a/\n    upstream: nowhere\n", "routes[0].upstream"},
		{"duplicate route", "routes:\n  - path: /a/\n    upstream: http://127.0.0.1:1\n  - path: /a/\n    upstream: http://127.0.0.1:2\n", "routes[1].path"},
		{"allow syntax", "routes:\n  - path: /a/\n    upstream: http://127.0.0.1:1\n    allow: 'user.is_staff ||'\n", "routes[0].allow"},
		{"allow not bool", "routes:\n  - path: /a/\n    upstream: http://127.0.0.1:1\n    allow: '1 + 2'\n", "routes[0].allow"},
		{"allow on auth none", "routes:\n  - path: /a/\n    upstream: http://127.0.0.1:1\n    auth: none\n    allow: 'user.is_staff'\n", "routes[0].allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSettings(strings.NewReader(tt.yaml), noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

// TestValidateReportsEveryProblem: several problems come back together.
func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := LoadSettings(strings.NewReader("listen: ''\nusers:\n  cache_size: 0\nlog:\n  format: xml\n"), noEnv)
	for _, key := range []string{"listen", "users.cache_size", "log.format"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Fatalf("error %v does not mention %s", err, key)
		}
	}
}

func FuzzLoadSettings(f *testing.F) {
	repo, _ := os.ReadFile("../settings.yaml")
	for _, seed := range []string{string(repo), "", "listen: x\n", "routes:\n  - path: /a/\n    upstream: http://h\n    allow: 'user.x'\n", "auth: [1, 2]\n", "a: &a [*a]\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		s, err := LoadSettings(strings.NewReader(doc), noEnv)
		if err != nil {
			return
		}
		if probs := s.Validate(); len(probs) > 0 {
			t.Fatalf("loaded settings fail Validate again: %v", probs)
		}
		if _, probs := Compile(s); len(probs) > 0 {
			t.Fatalf("valid settings fail to compile: %v", probs)
		}
	})
}
