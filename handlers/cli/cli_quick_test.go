package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// quickRepoSettingsFile is the repository's settings.yaml, which main
// embeds, read once (tests may change directory later).
var quickRepoSettingsFile = sync.OnceValues(func() ([]byte, error) { return os.ReadFile("../../settings.yaml") })

func quickRepoSettings(t *testing.T) []byte {
	t.Helper()
	b, err := quickRepoSettingsFile()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// quickRun runs a command of a binary built with the repository's default
// settings, with the given environment.
func quickRun(ctx context.Context, t *testing.T, env map[string]string, stderr *syncBuffer, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	if stderr == nil {
		stderr = &syncBuffer{}
	}
	err := RunBuild(ctx, args, func(k string) string { return env[k] }, &out, stderr,
		Build{Version: "v9.8.7", Settings: quickRepoSettings(t)})
	return out.String(), err
}

// Global flags work before the command as well as after it, in every
// spelling the flag package accepts; --version and -v are the version
// command; an unknown flag before a command is an error, not a server.
func TestQuickGlobalFlagsBeforeOrAfterTheCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	st, err := models.OpenStore(t.Context(), models.Database{Driver: "sqlite", DSN: db}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertUser(t.Context(), models.User{ID: "1", Email: "alice@example.com", IsActive: true, FetchedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	cfg := writeConfig(t, "database:\n  dsn: \""+db+"\"\n")
	for _, args := range [][]string{
		{"--config", cfg, "users", "list"},
		{"-config", cfg, "users", "list"},
		{"--config=" + cfg, "users", "list"},
		{"-config=" + cfg, "users", "list"},
		{"users", "list", "--config", cfg},
		{"users", "--config", cfg, "list"},
		{"--config", cfg, "users", "list", "--json"},
	} {
		out, err := quickRun(t.Context(), t, nil, nil, args...)
		if err != nil || !strings.Contains(out, "alice@example.com") {
			t.Errorf("jwtgate %s: err %v, output %q", strings.Join(args, " "), err, out)
		}
	}
	for _, args := range [][]string{{"--version"}, {"-v"}, {"-version"}, {"version"}, {"--config", cfg, "--version"}} {
		out, err := quickRun(t.Context(), t, nil, nil, args...)
		if err != nil || !strings.HasPrefix(out, "jwtgate v9.8.7\n") || !strings.Contains(out, "go:") {
			t.Errorf("jwtgate %s: err %v, output %q", strings.Join(args, " "), err, out)
		}
	}
	if out, err := quickRun(t.Context(), t, nil, nil, "--config", cfg, "check"); !strings.Contains(out, "settings "+cfg+":") {
		t.Errorf("--config before check was not used: %v\n%s", err, out)
	}
	// An unknown flag before the command fails at once (serve's flag error).
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := quickRun(ctx, t, nil, nil, "--frobnicate", "users", "list"); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("unknown global flag: %v", err)
	}
}

// version prints the commit, its date (whether the tree had changes), the
// Go version and the main dependencies' versions from the build info.
func TestQuickVersionText(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "jwtgate", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "github.com/gin-gonic/gin", Version: "v1.12.0"},
			{Path: "gorm.io/gorm", Version: "v1.31.2"},
			{Path: "golang.org/x/sys", Version: "v0.1.0"},
			{Path: "github.com/expr-lang/expr", Version: "v1.17.8", Replace: &debug.Module{Path: "../expr", Version: ""}},
		},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-11-30T14:53:00Z"}, {Key: "vcs.modified", Value: "true"},
		},
	}
	got := versionText(Build{Version: "v1.4.0", Commit: "ldflags-commit"}, bi)
	for _, want := range []string{
		"jwtgate v1.4.0\n", "commit:  0123456789abcdef (with uncommitted changes)", "date:    2026-11-30T14:53:00Z",
		"go:      go1.99.1 ", "github.com/gin-gonic/gin v1.12.0", "gorm.io/gorm v1.31.2", "github.com/expr-lang/expr v1.17.8 => ../expr",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("version output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "golang.org/x/sys") {
		t.Errorf("version lists a minor dependency:\n%s", got)
	}
	// go install jwtgate@v2.0.0: the module version stands in for "dev";
	// no build info at all still prints something useful.
	bi.Main.Version = "v2.0.0"
	if got := versionText(Build{Version: "dev"}, bi); !strings.HasPrefix(got, "jwtgate v2.0.0\n") {
		t.Errorf("installed module version not used:\n%s", got)
	}
	if got := versionText(Build{Version: "dev"}, nil); !strings.Contains(got, "commit:  unknown") || !strings.Contains(got, "go:      go") {
		t.Errorf("without build info:\n%s", got)
	}
	// -buildvcs=false: the -ldflags commit and date stand in.
	got = versionText(Build{Version: "v1.4.0", Commit: "abc123", Date: "2026-11-30T15:00:00Z"}, &debug.BuildInfo{GoVersion: "go1.99.1"})
	if !strings.Contains(got, "commit:  abc123\n") || !strings.Contains(got, "date:    2026-11-30T15:00:00Z") {
		t.Errorf("ldflags commit and date not shown:\n%s", got)
	}
}

// `jwtgate config` prints the built-in settings file byte for byte, and it
// is a valid settings file.
func TestQuickConfigPrintsTheDefaults(t *testing.T) {
	out, err := quickRun(t.Context(), t, nil, nil, "config")
	if err != nil || out != string(quickRepoSettings(t)) {
		t.Fatalf("config: %v; output differs from settings.yaml (%d bytes)", err, len(out))
	}
	if _, err := models.LoadSettings(strings.NewReader(out), func(string) string { return "" }); err != nil {
		t.Fatalf("printed defaults do not load: %v", err)
	}
	if _, _, err := runCLI(t, "config"); err == nil {
		t.Fatal("config without built-in defaults: no error")
	}
	if _, err := quickRun(t.Context(), t, nil, nil, "config", "extra"); err == nil {
		t.Fatal("config extra: no error")
	}
}

// With no settings file anywhere, check and serve run on the built-in
// defaults and say so; a file named by --config or $JWTGATE_CONFIG that is
// missing is an error, not a silent fallback.
func TestQuickBuiltInDefaultsWithoutAFile(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	dir := t.TempDir()
	quickRepoSettings(t) // before leaving the package directory
	t.Chdir(dir)
	db := filepath.Join(dir, "mirror.db")
	env := map[string]string{models.EnvAuthServiceURL: fa.URL(), models.EnvDatabaseDSN: db, models.EnvListen: "127.0.0.1:0"}

	out, err := quickRun(t.Context(), t, env, nil, "check")
	if err != nil || !strings.Contains(out, "settings built-in defaults") || !strings.Contains(out, "0 problems") {
		t.Fatalf("check on the built-in defaults: %v\n%s", err, out)
	}

	ctx, cancel := context.WithCancel(t.Context())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { _, err := quickRun(ctx, t, env, &logs, "serve"); done <- err }()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(logs.String(), `msg=settings from="built-in defaults`) {
		select {
		case err := <-done:
			t.Fatalf("serve returned before logging its settings: %v\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("serve did not log which settings it uses:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}

	for name, args := range map[string][]string{
		"--config":         {"check", "--config", filepath.Join(dir, "missing.yaml")},
		"$JWTGATE_CONFIG":  {"check"},
		"serve --config":   {"serve", "--config", filepath.Join(dir, "missing.yaml")},
		"--config, global": {"--config", filepath.Join(dir, "missing.yaml"), "serve"},
	} {
		env := map[string]string{models.EnvConfig: filepath.Join(dir, "missing.yaml"), models.EnvListen: "127.0.0.1:0", models.EnvDatabaseDSN: db}
		out, err := quickRun(t.Context(), t, env, nil, args...)
		if err == nil || strings.Contains(out, "built-in") {
			t.Errorf("%s names a missing file: err %v, output %q; want an error", name, err, out)
		}
	}
}

// quickSnapshot is every file under dir with its size, mode, time and content hash.
func quickSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%s %s %d %x", info.Mode(), info.ModTime(), len(b), sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// check changes nothing on disk: it creates no SQLite file where there
// was none (plain path or file: DSN with options), and leaves an existing
// database, its directory and the settings file as they were.
func TestQuickCheckChangesNothingOnDisk(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	for _, dsnOf := range []func(string) string{
		func(p string) string { return p },
		func(p string) string { return "file:" + p + "?_busy_timeout=5000" },
	} {
		dir := t.TempDir()
		db := filepath.Join(dir, "mirror.db")
		cfg := filepath.Join(dir, "settings.yaml")
		if err := os.WriteFile(cfg, []byte("auth_service:\n  url: \""+fa.URL()+"\"\ndatabase:\n  dsn: \""+dsnOf(db)+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := quickSnapshot(t, dir)
		out, err := quickRun(t.Context(), t, nil, nil, "check", "--config", cfg)
		if err != nil || !strings.Contains(out, "does not exist yet") {
			t.Fatalf("check, no database yet: %v\n%s", err, out)
		}
		if after := quickSnapshot(t, dir); len(after) != len(before) {
			t.Fatalf("check created files: before %v, after %v", before, after)
		}

		st, err := models.OpenStore(t.Context(), models.Database{Driver: "sqlite", DSN: dsnOf(db)}, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"1", "2"} {
			if err := st.UpsertUser(t.Context(), models.User{ID: id, Email: id + "@example.com", IsActive: true, FetchedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		_ = st.Close()
		before = quickSnapshot(t, dir)
		time.Sleep(20 * time.Millisecond) // so a rewrite would show in the modification times
		out, err = quickRun(t.Context(), t, nil, nil, "check", "--config", cfg)
		if err != nil || !strings.Contains(out, "ok (2 mirrored users)") {
			t.Fatalf("check, existing database: %v\n%s", err, out)
		}
		after := quickSnapshot(t, dir)
		if len(after) != len(before) {
			t.Fatalf("check changed the files: before %v, after %v", before, after)
		}
		for p, v := range before {
			if after[p] != v {
				t.Errorf("check changed %s", p)
			}
		}
	}
}

// serve with the auth service down logs it at once: the first readiness
// probe's failure, not only a later change (readiness_interval 1h here, so
// the next probe is half an hour away).
func TestQuickServeWarnsAtOnceWhenTheAuthServiceIsDown(t *testing.T) {
	cfg := writeConfig(t, `
listen: "127.0.0.1:0"
metrics_listen: "127.0.0.1:0"
readiness_interval: 1h
auth_service:
  url: "http://127.0.0.1:1"
database:
  dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"
`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { _, err := quickRun(ctx, t, nil, &logs, "serve", "--config", cfg); done <- err }()
	deadline := time.After(15 * time.Second)
	for !strings.Contains(logs.String(), `level=WARN msg="readiness check fails" check=auth_service`) {
		select {
		case err := <-done:
			t.Fatalf("serve returned: %v\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("no warning about the unreachable auth service:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// check reports a bad database or auth service setting once: the probe it
// makes pointless is skipped, not reported as a second problem.
func TestQuickCheckReportsABadKeyOnce(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	auth := "auth_service:\n  url: \"" + fa.URL() + "\"\n"
	tests := []struct{ name, yaml, skipped string }{
		{"bad driver", auth + "database:\n  driver: mysql\n", "database (mysql jwtgate.db):\n  skipped: fix database.driver first"},
		{"empty dsn", auth + "database:\n  dsn: \"\"\n", "skipped: fix database.dsn first"},
		{"scheme-less auth URL", "auth_service:\n  url: \"localhost:8000\"\n", "auth service (localhost:8000):\n  skipped: fix auth_service.url first"},
		{"auth URL of the wrong type", "auth_service:\n  url: [1]\n", "skipped: fix auth_service.url first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir) // jwtgate.db, if anything, would land here
			cfg := filepath.Join(dir, "settings.yaml")
			if err := os.WriteFile(cfg, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			out, _, err := runCLI(t, "check", "--config", cfg)
			if !errors.Is(err, ErrFailed) || !strings.Contains(out, tt.skipped) || !strings.Contains(out, "1 problem,") {
				t.Fatalf("check: %v\n%s\nwant %q and exactly 1 problem", err, out, tt.skipped)
			}
		})
	}
}
