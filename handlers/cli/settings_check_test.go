package cli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"jwtgate/tests/fakeauth"
)

// settingsCheck runs check on yaml (with the auth service at a fake that
// answers, and the database in a temporary directory) and returns its
// output's lines.
func settingsCheck(t *testing.T, yaml string) ([]string, error) {
	t.Helper()
	fa := fakeauth.Start(t, fakeauth.Options{})
	dir := t.TempDir()
	t.Chdir(dir) // jwtgate.db, if anything, would land here
	cfg := filepath.Join(dir, "settings.yaml")
	doc := "auth_service:\n  url: \"" + fa.URL() + "\"\n" + yaml
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "check", "--config", cfg)
	return strings.Split(out, "\n"), err
}

// check prints each settings problem as it is, one "problem:" line each
// (an allow expression's caret display indented under its problem), never
// cut apart or run together however the message reads, and skips a probe
// that any of the problems makes pointless.
func TestSettingsCheckPrintsEachProblem(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // whole lines of the output, in order
	}{
		{"a value that reads like a YAML position",
			"routes:\n  - path: \"(line 2): a; b\"\n    upstream: http://127.0.0.1:9\n",
			[]string{`  problem: routes[0].path: must start with /, got "(line 2): a; b"`, "1 problem, 0 warnings."}},
		{"a value with a YAML-style position and an unknown key",
			"log:\n  formt: text\nroutes:\n  - path: \"x; routes[1].path (line 9): y\"\n    upstream: http://127.0.0.1:9\n",
			[]string{
				`  problem: log.formt (line 4): unknown key "formt": did you mean format?`,
				`  problem: routes[0].path: must start with /, got "x; routes[1].path (line 9): y"`,
				"2 problems, 0 warnings.",
			}},
		{"the second of two decoding problems blames the database",
			"log:\n  levl: info\ndatabase:\n  driver: [1]\n",
			[]string{
				`  problem: log.levl (line 4): unknown key "levl": did you mean level?`,
				"  problem: database.driver[0] (line 6): cannot unmarshal !!seq into string",
				"  skipped: fix database.driver first",
				"2 problems, 0 warnings.",
			}},
		{"an allow expression's caret display",
			"routes:\n  - path: /a/\n    upstream: http://127.0.0.1:9\n    allow: 'user.is_staff &&'\n",
			[]string{`  problem: routes[0].allow: route "a": allow expression "user.is_staff &&" does not compile: unexpected token EOF (1:16)`,
				"           | user.is_staff &&", "1 problem, 0 warnings."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := settingsCheck(t, tt.yaml)
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("check: %v, want ErrFailed\n%s", err, strings.Join(lines, "\n"))
			}
			at := 0
			for _, w := range tt.want {
				i := slices.Index(lines[at:], w)
				if i < 0 {
					t.Fatalf("no line %q (in order) in:\n%s", w, strings.Join(lines, "\n"))
				}
				at += i + 1
			}
		})
	}
}
