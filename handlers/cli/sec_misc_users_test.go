package cli

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"jwtgate/models"
)

// secMiscHostile are mirrored values that would drive a terminal if
// printed raw: escape sequences, clipboard writes, C1 controls, bidi.
var secMiscHostile = map[string]string{
	"csi":         "a\x1b[2J\x1b[31mb@example.com",
	"osc52":       "x\x1b]52;c;cm0gLXJmIH4K\x07@example.com",
	"osc-st":      "x\x1b]0;title\x1b\\@example.com",
	"bel":         "ding\a@example.com",
	"cr":          "evil@example.com\rgood@example.com",
	"lf":          "two\nlines@example.com",
	"tab":         "col\tumn@example.com",
	"nul":         "nul\x00@example.com",
	"del":         "del\x7f@example.com",
	"c1-csi":      "c1\u009b31m@example.com",
	"c1-nel":      "c1\u0085@example.com",
	"c1-osc":      "c1\u009d52;c;eA==\u009c@example.com",
	"bidi-rlo":    "moc.elpmaxe@\u202eevil",
	"bidi-lri":    "a\u2066b\u2069@example.com",
	"rlm":         "a\u200f@example.com",
	"alm":         "a\u061c@example.com",
	"ls":          "a\u2028b@example.com",
	"zwsp":        "a\u200bb@example.com",
	"bom":         "\ufeffa@example.com",
	"invalid-utf": "a\xff\xfeb@example.com",
	"quote":       `"admin@example.com"`,
}

// secMiscRawControl returns the first character in out that a terminal
// could act on (anything not printable other than newline), or -1.
func secMiscRawControl(out string) rune {
	for _, r := range out {
		if r != '\n' && (r == utf8.RuneError || !unicode.IsPrint(r)) {
			return r
		}
	}
	return -1
}

func TestSecMiscUsersListQuotesControlCharacters(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	cfg := writeConfig(t, "database:\n  dsn: \""+db+"\"\n")
	st, err := models.OpenStore(t.Context(), models.Database{Driver: "sqlite", DSN: db}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for name, v := range secMiscHostile {
		i++
		u := models.User{ID: strconv.Itoa(i), Username: name + "\x1b[8m", Email: v, IsActive: true, FetchedAt: time.Now(),
			Fields: map[string]any{"email": v, "note": v}}
		if err := st.UpsertUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	hostileID := "9\x1b]52;c;eA==\a"
	if err := st.UpsertUser(t.Context(), models.User{ID: hostileID, Username: "id", Email: "id@example.com", FetchedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	out, _, err := runCLI(t, "users", "list", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := secMiscRawControl(out); r >= 0 {
		t.Fatalf("users list prints %U raw:\n%q", r, out)
	}
	if n := strings.Count(out, "\n"); n != len(secMiscHostile)+2 {
		t.Errorf("users list: %d lines, want %d (one per user and the header):\n%s", n, len(secMiscHostile)+2, out)
	}
	for name, v := range secMiscHostile {
		if !strings.Contains(out, strconv.Quote(v)) {
			t.Errorf("%s: users list does not show %s", name, strconv.Quote(v))
		}
	}
	if !strings.Contains(out, strconv.Quote(hostileID)) {
		t.Errorf("hostile id not quoted:\n%s", out)
	}

	out, _, err = runCLI(t, "users", "list", "--json", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := secMiscRawControl(out); r >= 0 {
		t.Fatalf("users list --json prints %U raw:\n%q", r, out)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != len(secMiscHostile)+1 {
		t.Fatalf("users list --json: %v\n%s", err, out)
	}
	emails := map[string]bool{}
	for _, u := range list {
		emails[u["email"].(string)] = true
	}
	for name, v := range secMiscHostile {
		if want := secMiscValidUTF8(v); !emails[want] {
			t.Errorf("%s: --json does not round-trip %q", name, want)
		}
	}

	for id := 1; id <= len(secMiscHostile); id++ {
		out, _, err = runCLI(t, "users", "show", strconv.Itoa(id), "--config", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r := secMiscRawControl(out); r >= 0 {
			t.Fatalf("users show %d prints %U raw:\n%q", id, r, out)
		}
		var one map[string]any
		if err := json.Unmarshal([]byte(out), &one); err != nil || one["record"].(map[string]any)["note"] != one["email"] {
			t.Fatalf("users show %d: %v\n%s", id, err, out)
		}
	}
}

// secMiscValidUTF8 is s as encoding/json sends it: each invalid byte U+FFFD.
func secMiscValidUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// termJSON leaves printable text, non-ASCII letters included, unchanged.
func TestSecMiscTermJSONKeepsPrintableText(t *testing.T) {
	for _, s := range []string{`{"email":"zoë@example.com","name":"Ünïcödé 日本 🎉"}`, `[]`, `"a b"`} {
		if got := string(termJSON([]byte(s))); got != s {
			t.Errorf("termJSON(%s) = %s", s, got)
		}
	}
	if got := string(termJSON([]byte("\"\U000e0001\u202e\u0085\x7f\""))); got != `"\udb40\udc01\u202e\u0085\u007f"` {
		t.Errorf("termJSON escapes: %s", got)
	}
}
