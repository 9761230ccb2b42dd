package models

import (
	"strings"
	"testing"
)

// Unknown keys name the nearest key of their own section, whatever the
// spelling (case, '-' for '_', a letter missing, swapped or extra), or the
// section the key belongs to; nothing is suggested for a key that is not
// close to any.
func TestSettingsUnknownKeySuggestsNearest(t *testing.T) {
	tests := []struct{ name, yaml, want, notWant string }{
		{"letter missing", "auth_service:\n  timout: 5s\n", `auth_service.timout (line 2): unknown key "timout": did you mean timeout?`, ""},
		{"upper case", "auth_service:\n  Timeout: 5s\n", `did you mean timeout?`, ""},
		{"dash for underscore", "auth_service:\n  max-body-bytes: 10\n", `did you mean max_body_bytes?`, ""},
		{"swapped letters", "auth:\n  verfiy: local\n", `did you mean verify?`, ""},
		{"extra letter", "log:\n  levels: info\n", `did you mean level?`, ""},
		{"top level", "listne: 127.0.0.1:1\n", `did you mean listen?`, ""},
		{"nested section", "auth:\n  local:\n    jwks_ulr: http://127.0.0.1:1/jwks\n", `did you mean jwks_url?`, ""},
		{"route key", "routes:\n  - path: /a/\n    upstreem: http://127.0.0.1:1\n", `did you mean upstream?`, ""},
		{"nearest in its section, not elsewhere", "database:\n  drivr: sqlite\n", `did you mean driver?`, ""},
		{"key of another section", "auth_service:\n  revoke_on_logout: true\n", `did you mean auth.revoke_on_logout?`, ""},
		{"nothing close", "auth_service:\n  colour: blue\n", `unknown key "colour" (jwtgate config prints every key)`, "did you mean"},
		{"short names are not guessed wildly", "log:\n  x: 1\n", `unknown key "x"`, "did you mean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSettings(strings.NewReader(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Fatalf("error %v, must not contain %q", err, tt.notWant)
			}
		})
	}
}

// A bad enum value is one error: the sections it made irrelevant (or look
// misconfigured) are not reported as well.
func TestSettingsBadEnumHasNoKnockOnErrors(t *testing.T) {
	tests := []struct{ name, yaml, want, notWant string }{
		{"misspelt verify mode", "auth:\n  verify: lokal\n", `auth.verify: must be remote, local, hybrid or introspect, got "lokal"`, "auth.local"},
		{"verify mode in capitals", "auth:\n  verify: LOCAL\n", `auth.verify: must be remote, local, hybrid or introspect, got "LOCAL"`, "auth.local"},
		{"bad route auth inside a protected route", "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:1\n  - path: /api/x/\n    upstream: http://127.0.0.1:1\n    auth: nope\n",
			`routes[1].auth: must be required, optional or none, got "nope"`, "skip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadSettings(strings.NewReader(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			all := err.Error() + "\n" + strings.Join(s.Warnings(), "\n")
			if strings.Contains(all, tt.notWant) {
				t.Fatalf("knock-on report mentioning %q:\n%s", tt.notWant, all)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Fatalf("%d errors, want 1:\n%v", n, err)
			}
		})
	}
	// A valid local mode without keys is still an error.
	if _, err := LoadSettings(strings.NewReader("auth:\n  verify: hybrid\n"), noEnv); err == nil || !strings.Contains(err.Error(), "verify: hybrid needs auth.local.jwks_url") {
		t.Fatalf("verify: hybrid without keys: %v", err)
	}
}

// A YAML syntax error names the line the mistake is on, with its text,
// where yaml.v3 names the line the enclosing block starts on, or none.
func TestSettingsSyntaxErrorNamesItsLine(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"bad indent in a list item", "listen: 127.0.0.1:1\nroutes:\n  - path: /a/\n    upstream: http://127.0.0.1:1\n   allow: x\n", `line 5: `},
		{"unclosed flow list", "auth:\n  header_types: [Bearer\nlog:\n  level: info\n", `line 2: `},
		{"tab indent", "auth:\n  verify: local\n\tcache: 1\n", `line 3: `},
		{"unclosed quote", "log:\n  level: info\nlisten: \"127.0.0.1:1\n", `line 3: `},
		{"mapping in a scalar", "log: info\n  level: debug\n", `line 2: `},
		{"control character", "log:\n  level: info\n  format: \"te\x01xt\"\n", `line 3: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSettings(strings.NewReader(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), "settings: "+tt.want+"YAML syntax error: ") {
				t.Fatalf("error %v, want it to start with %q", err, "settings: "+tt.want+"YAML syntax error: ")
			}
			line := strings.Split(tt.yaml, "\n")[int(tt.want[5]-'0')-1]
			if !strings.Contains(err.Error(), strings.TrimSpace(strings.ReplaceAll(line, "\x01", ""))[:3]) {
				t.Fatalf("error %v does not quote line %q", err, line)
			}
		})
	}
}
