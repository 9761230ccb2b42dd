package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// runCLI runs a command and returns its output and error.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = Run(t.Context(), args, func(string) string { return "" }, &out, &errb, "v1.2.3")
	return out.String(), errb.String(), err
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "settings.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckReportsEveryProblem(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	cfg := writeConfig(t, `
listen: "127.0.0.1:0"
auth_service:
  url: "http://127.0.0.1:1"
  timout: 5s
  timeout: 5 seconds
database:
  dsn: "`+db+`"
routes:
  - path: "/api/billing"
    name: old-billing
    upstream: "not a url"
  - path: "/api/billing/"
    upstream: "http://127.0.0.1:9001"
    allow: 'user.is_staff &&'
  - path: "/public/"
    upstream: "http://127.0.0.1:9002"
    auth: none
`)
	out, _, err := runCLI(t, "check", "--config", cfg)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("check: err %v, want ErrFailed; output:\n%s", err, out)
	}
	for _, want := range []string{
		`unknown key "timout"`,
		`want a Go duration such as "30s"`,
		`routes[0].upstream: must be an http:// or https:// URL`,
		`routes[1].allow: `,
		`"user.is_staff &&" does not compile`,
		`routes[1].path: "/api/billing/" and routes[0].path "/api/billing" cover the same requests`,
		`warning: routes[2] (/public/): auth: none lets anyone send POST, PUT, PATCH, DELETE upstream`,
		"database (sqlite " + db + "):\n  ok: the file does not exist yet",
		"auth service (http://127.0.0.1:1):\n  problem: not answering",
		"6 problems, 1 warning.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckPassesAWorkingSetup(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	cfg := writeConfig(t, `
auth_service:
  url: "`+fa.URL()+`"
database:
  dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"
routes:
  - path: "/api/"
    upstream: "http://127.0.0.1:9001"
  - path: "/api/public/"
    upstream: "http://127.0.0.1:9001"
    auth: none
    methods: [GET]
`)
	out, _, err := runCLI(t, "check", "--config", cfg)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if !strings.Contains(out, "routes[1] (/api/public/) is inside routes[0] (/api/) and has auth: none instead of required") {
		t.Errorf("no warning about the nested route that drops authentication:\n%s", out)
	}
	if !strings.Contains(out, "0 problems, 1 warning.") {
		t.Errorf("tally:\n%s", out)
	}
	if _, _, err := runCLI(t, "check", "--config", filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, ErrFailed) {
		t.Fatalf("missing settings file: err %v, want ErrFailed", err)
	}
}

// TestCheckPingsRedis: with the shared cache configured, check pings Redis
// and checks the secret's length; a Redis that does not answer is a
// problem (serve would start, but the replicas would not share verdicts).
func TestCheckPingsRedis(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	tests := []struct {
		name, url, secret string
		want              []string
	}{
		{"up", "redis://127.0.0.1:6379/0", strings.Repeat("s", 32), []string{"shared cache (redis://127.0.0.1:6379/0):\n  ok", "0 problems"}},
		{"password hidden", "redis://:hunter2@127.0.0.1:6379/0", strings.Repeat("s", 32), []string{"shared cache (redis://:xxxxx@127.0.0.1:6379/0)"}},
		{"down", "redis://" + deadAddr + "/0", strings.Repeat("s", 32), []string{"problem: redis ping:", "1 problem"}},
		{"short secret", "redis://127.0.0.1:6379/0", "short", []string{"auth.cache.redis_secret: environment variable JWTGATE_TEST_REDIS must hold at least 32 bytes, got 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, `
auth_service:
  url: "`+fa.URL()+`"
auth:
  cache:
    redis_url: "`+tt.url+`"
    redis_secret: "env:JWTGATE_TEST_REDIS"
database:
  dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"
routes:
  - path: "/api/"
    upstream: "http://127.0.0.1:9001"
`)
			var out, errb bytes.Buffer
			getenv := func(k string) string {
				if k == "JWTGATE_TEST_REDIS" {
					return tt.secret
				}
				return ""
			}
			_ = Run(t.Context(), []string{"check", "--config", cfg}, getenv, &out, &errb, "v1.2.3")
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("check output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "hunter2") {
				t.Errorf("check printed the Redis password:\n%s", out.String())
			}
		})
	}
}

func TestUsersCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	cfg := writeConfig(t, "database:\n  dsn: \""+db+"\"\n")
	st, err := models.OpenStore(t.Context(), models.Database{Driver: "sqlite", DSN: db}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, u := range []models.User{
		{ID: "1", Username: "alice", Email: "alice@example.com", IsActive: true, FetchedAt: now, Fields: map[string]any{"id": 1, "tenant": "acme"}},
		{ID: "2", Username: "bob", Email: "bob@example.com", IsActive: true, IsStaff: true, FetchedAt: now.Add(-40 * 24 * time.Hour)},
		{ID: "3", Username: "carol", Email: "carol@example.com", FetchedAt: now.Add(-time.Hour)},
	} {
		if err := st.UpsertUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.Close()

	out, _, err := runCLI(t, "users", "list", "--config", cfg)
	if err != nil || !strings.Contains(out, "ID") || !strings.Contains(out, "alice@example.com") || strings.Count(out, "\n") != 4 {
		t.Fatalf("users list: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "users", "list", "--json", "--config", cfg)
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 3 || list[1]["is_staff"] != true {
		t.Fatalf("users list --json: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "users", "show", "1", "--config", cfg)
	var one map[string]any
	if err != nil || json.Unmarshal([]byte(out), &one) != nil || one["record"].(map[string]any)["tenant"] != "acme" {
		t.Fatalf("users show 1: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "users", "show", "99", "--config", cfg); err == nil || !strings.Contains(err.Error(), `no user "99"`) {
		t.Fatalf("users show 99: %v", err)
	}
	if out, _, err := runCLI(t, "--config", cfg, "users", "delete", "3"); err != nil || !strings.Contains(out, "deleted user 3") {
		t.Fatalf("--config before the command: users delete 3: %v %s", err, out)
	}
	if _, _, err := runCLI(t, "users", "purge", "--config", cfg); err == nil || !strings.Contains(err.Error(), "--older-than is required") {
		t.Fatalf("purge without --older-than: %v", err)
	}
	if _, _, err := runCLI(t, "users", "purge", "--older-than", "soon", "--config", cfg); err == nil || !strings.Contains(err.Error(), "30d") {
		t.Fatalf("purge --older-than soon: %v", err)
	}
	if out, _, err := runCLI(t, "users", "purge", "--older-than", "30d", "--config", cfg); err != nil || !strings.Contains(out, "purged 1 users") {
		t.Fatalf("purge 30d: %v %s", err, out)
	}
	out, _, _ = runCLI(t, "users", "list", "--json", "--config", cfg)
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0]["id"] != "1" {
		t.Fatalf("after delete and purge: %s", out)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"serve", "--help"}, {"check", "--help"}, {"users", "--help"},
		{"users", "list", "--help"}, {"version", "--help"}, {"help", "users"},
	} {
		out, _, err := runCLI(t, args...)
		if err != nil || !strings.Contains(out, "usage: jwtgate") {
			t.Errorf("%v: err %v, output %q", args, err, out)
		}
	}
	if out, _, err := runCLI(t, "version"); err != nil || !strings.HasPrefix(out, "jwtgate v1.2.3\n") {
		t.Fatalf("version: %v %q", err, out)
	}
	if _, _, err := runCLI(t, "frobnicate"); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	cfg := writeConfig(t, `
listen: "127.0.0.1:0"
metrics_listen: "127.0.0.1:0"
auth_service:
  url: "`+fa.URL()+`"
database:
  dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"
`)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var errb syncBuffer
	go func() {
		done <- Run(ctx, []string{"serve", "--config", cfg}, func(string) string { return "" }, &bytes.Buffer{}, &errb, "test")
	}()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(errb.String(), "jwtgate serving") {
		select {
		case err := <-done:
			t.Fatalf("serve returned early: %v\n%s", err, errb.String())
		case <-deadline:
			t.Fatalf("serve did not start:\n%s", errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(errb.String(), "stopped") {
		t.Fatalf("no stopped line:\n%s", errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the serving goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
