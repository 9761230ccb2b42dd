package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"jwtgate/handlers/keymat"
	"jwtgate/models"
)

// keysRun runs `jwtgate keys args...` with settings file cfg.
func keysRun(t *testing.T, cfg string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(t.Context(), append([]string{"keys", "--config", cfg}, args...), func(string) string { return "" }, &out, &errb, "test")
	return out.String() + errb.String(), err
}

// keysSettings writes a settings file whose identity token key is keyFile.
func keysSettings(t *testing.T, enabled bool, keyFile string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "settings.yaml")
	yaml := "identity_token: {enabled: " + map[bool]string{true: "true", false: "false"}[enabled] + ", key_file: \"" + keyFile + "\", lifetime: 60s}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// keysSetup is a settings file and a key file holding content ("" for
// none, "gen" for a fresh ES256 key).
func keysSetup(t *testing.T, content, previous string) (cfg, keyFile string) {
	t.Helper()
	keyFile = filepath.Join(t.TempDir(), "id.pem")
	switch content {
	case "":
	case "gen":
		if _, _, err := keymat.LoadOrCreatePrivate(keyFile, models.AlgES256); err != nil {
			t.Fatal(err)
		}
	default:
		if err := os.WriteFile(keyFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if previous != "" {
		if err := os.WriteFile(keymat.PreviousPath(keyFile), []byte(previous), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return keysSettings(t, true, keyFile), keyFile
}

// Each way keys rotate and keys show can fail says what is wrong and names
// the key or the file; a refused rotation changes nothing.
func TestKeysErrors(t *testing.T) {
	rsa := "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n"
	tests := []struct {
		name          string
		args          []string
		key, previous string
		missingConfig bool
		disabled      bool
		want          []string
	}{
		{name: "no such settings file", args: []string{"rotate"}, missingConfig: true, want: []string{"cannot read the settings file", "nope.yaml"}},
		{name: "no subcommand", args: nil, key: "gen", want: []string{"want rotate or show"}},
		{name: "unknown subcommand", args: []string{"spin"}, key: "gen", want: []string{"want rotate or show", "spin"}},
		{name: "identity token off", args: []string{"rotate"}, key: "gen", disabled: true, want: []string{"identity_token.enabled is false"}},
		{name: "rotate: no key file", args: []string{"rotate"}, want: []string{"identity_token.key_file", "does not exist", "no key to rotate"}},
		{name: "show: no key file", args: []string{"show"}, want: []string{"identity_token.key_file", "no such file"}},
		{name: "rotate: garbage key", args: []string{"rotate"}, key: "garbage\n", want: []string{"identity_token.key_file", "no PEM block"}},
		{name: "rotate: broken RSA key", args: []string{"rotate"}, key: rsa, want: []string{"identity_token.key_file", "id.pem"}},
		{name: "rotate: unreadable previous", args: []string{"rotate"}, key: "gen", previous: "junk", want: []string{"id.pem.previous", "Retired-At", "--force"}},
		{name: "show: unreadable previous", args: []string{"show"}, key: "gen", previous: "junk", want: []string{"current kid:", "previous:     unreadable", "id.pem.previous"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, keyFile := keysSetup(t, tt.key, tt.previous)
			if tt.missingConfig {
				cfg = filepath.Join(t.TempDir(), "nope.yaml")
			}
			if tt.disabled {
				cfg = keysSettings(t, false, keyFile)
			}
			before, _ := os.ReadFile(keyFile)
			out, err := keysRun(t, cfg, tt.args...)
			if err == nil {
				t.Fatalf("keys %v succeeded:\n%s", tt.args, out)
			}
			msg := out + err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("keys %v: %q does not say %q", tt.args, msg, w)
				}
			}
			if after, _ := os.ReadFile(keyFile); !bytes.Equal(before, after) {
				t.Error("a refused command changed the key file")
			}
		})
	}
}

// keys rotate prints the new and retired kid and the retired key's end;
// keys show prints the same kids; a second rotation is refused while the
// retired key is published, and --force does it, dropping that key.
func TestKeysRotateAndShow(t *testing.T) {
	cfg, keyFile := keysSetup(t, "gen", "")
	out, err := keysRun(t, cfg, "show")
	if err != nil || !strings.Contains(out, "current kid:") || !strings.Contains(out, "previous:     none") {
		t.Fatalf("show before any rotation: %v\n%s", err, out)
	}
	out, err = keysRun(t, cfg, "rotate")
	if err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	for _, w := range []string{"new kid:", "retired kid:", "published in the JWKS until"} {
		if !strings.Contains(out, w) {
			t.Errorf("rotate output lacks %q:\n%s", w, out)
		}
	}
	fi, err := os.Stat(keymat.PreviousPath(keyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf(".previous: %v %v, want mode 0600", fi, err)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key_file mode %v, want 0600", fi.Mode().Perm())
	}
	show, err := keysRun(t, cfg, "show")
	if err != nil || !strings.Contains(show, "published until") {
		t.Fatalf("show after rotation: %v\n%s", err, show)
	}
	if out, err := keysRun(t, cfg, "rotate"); err == nil || !strings.Contains(out+err.Error(), "still published") {
		t.Fatalf("a second rotation inside the window: %v\n%s", err, out)
	}
	out, err = keysRun(t, cfg, "rotate", "--force")
	if err != nil || !strings.Contains(out, "dropped kid:") {
		t.Fatalf("rotate --force: %v\n%s", err, out)
	}
}

// jwtgate check reports the retired key: none, published (with its end),
// or unreadable (a problem naming the file).
func TestCheckReportsPreviousKey(t *testing.T) {
	cfg, keyFile := keysSetup(t, "gen", "")
	check := func() string {
		t.Helper()
		var out bytes.Buffer
		_ = Run(t.Context(), []string{"check", "--config", cfg}, func(string) string { return "" }, &out, &out, "test")
		return out.String()
	}
	if out := check(); !strings.Contains(out, "previous key: none") {
		t.Fatalf("check before a rotation:\n%s", out)
	}
	if out, err := keysRun(t, cfg, "rotate"); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	if out := check(); !strings.Contains(out, "previous key: ") || !strings.Contains(out, "published until") {
		t.Fatalf("check after a rotation:\n%s", out)
	}
	if err := os.WriteFile(keymat.PreviousPath(keyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := check(); !strings.Contains(out, "problem: previous key unreadable") || !strings.Contains(out, "id.pem.previous") {
		t.Fatalf("check with a broken .previous:\n%s", out)
	}
}
