package models

import (
	"net/url"
	"slices"
	"testing"
)

// pathsDecoded is a request target's path as net/http hands it over.
func pathsDecoded(t *testing.T, target string) string {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("%q: %v", target, err)
	}
	return u.Path
}

func TestCleanPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"*", "/*"},
		{"/", "/"},
		{"/api/billing/", "/api/billing/"},
		{"//api//billing/x", "/api/billing/x"},
		{"/api/billing/../reports/", "/api/reports/"},
		{"/api/./billing", "/api/billing"},
		{"/../../x", "/x"},
		{"/api/billing/..", "/api"},
	}
	for _, tt := range tests {
		if got := CleanPath(tt.in); got != tt.want {
			t.Errorf("CleanPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestUnusualPath: every shape another stack resolves differently is
// named, and ordinary paths (path parameters in a non-dot segment, escaped
// spaces, UTF-8 names, an encoded slash, a literal "%") are not.
func TestUnusualPath(t *testing.T) {
	unusual := []string{
		"/api/billing/..;/reports/x",
		"/api/billing/.;/x",
		"/api/billing/..;jsessionid=x/reports/x",
		"/api/billing/%2e%2e;/reports/x",
		"/api/billing/%2E%2e;x=1/reports/x",
		"/api/billing/..%20/reports/x",
		"/api/billing/.../x",
		"/api/billing/..%5Creports/x",
		"/api/billing/..%5creports/x",
		"/api/billing/%5C",
		"/api/billing/%00/x",
		"/api/billing/x%00.json",
		"/api/billing/%0a",
		"/api/billing/%0d%0aX-Injected:%201",
		"/api/billing/%09",
		"/api/billing/%7f",
		"/api/billing/%c2%85",                     // NEL (C1 control)
		"/api/billing/%252e%252e/reports/x",       // double-encoded ../
		"/api/billing/%25252e%25252e/reports/x",   // triple-encoded
		"/api/billing/%252e%252e%253b/reports/x",  // double-encoded ..;
		"/api/billing/..%255creports/x",           // double-encoded backslash
		"/api/billing/%2500",                      // double-encoded NUL
		"/api/billing/%2525252e",                  // four further decodings
		"/api/billing/%E2%80%A4%E2%80%A4/reports", // U+2024 ONE DOT LEADER
		"/api/billing/%EF%BC%8E%EF%BC%8E/reports", // U+FF0E FULLWIDTH FULL STOP
		"/api/billing/%E3%80%82%E3%80%82/reports", // U+3002 IDEOGRAPHIC FULL STOP
		"/api/billing/%E2%80%A5/reports",          // U+2025 TWO DOT LEADER
		"/api/billing/..%EF%BC%8Freports",         // U+FF0F FULLWIDTH SOLIDUS
		"/api/billing/..%EF%BC%BCreports",         // U+FF3C FULLWIDTH REVERSE SOLIDUS
		"/api/billing/%c0%ae%c0%ae/reports",       // overlong "."
		"/api/billing/%c0%af",                     // overlong "/"
		"/api/billing/%ff%fe",                     // invalid UTF-8
		"/api/billing/caf%E9",                     // Latin-1, not UTF-8
	}
	for _, target := range unusual {
		if why := UnusualPath(CleanPath(pathsDecoded(t, target))); why == "" {
			t.Errorf("%s: not refused", target)
		}
	}
	ordinary := []string{
		"/api/billing/x",
		"/api/billing/x;v=1",
		"/api/billing/x;v=1/y",
		"/api/billing/a%20b",
		"/api/billing/caf%C3%A9",
		"/api/billing/%E6%97%A5%E6%9C%AC%E3%80%82txt", // an ideographic full stop inside a name
		"/api/billing/a%2Fb",
		"/api/billing/100%25",
		"/api/billing/50%25off",
		"/api/billing/a.b",
		"/api/billing/.well-known",
		"/api/billing/..x",
		"/api/billing/x..",
		"/api/billing/%2520", // an escaped "%20" in a name
		"/api/billing/../reports/x",
		"/api/billing/%2e%2e/reports/x",
	}
	for _, target := range ordinary {
		if why := UnusualPath(CleanPath(pathsDecoded(t, target))); why != "" {
			t.Errorf("%s: refused (%s)", target, why)
		}
	}
}

func TestPathReadings(t *testing.T) {
	tests := []struct {
		clean string
		want  []string
	}{
		{"/api/billing/x", []string{"/api/billing/x"}},
		{"/API/Billing/x", []string{"/api/billing/x"}},
		{"/api/billing;v=1/x", []string{"/api/billing/x"}},
		{"/api/billing./x", []string{"/api/billing/x"}},
		{"/api/billing /x", []string{"/api/billing/x"}},
		{"/api%2Fbilling/x", []string{"/api%2fbilling/x", "/api/billing/x"}},
		{"/api/billing\u2215x", []string{"/api/billing/x"}},
	}
	for _, tt := range tests {
		if got := slices.Collect(PathReadings(tt.clean)); !slices.Equal(got, tt.want) {
			t.Errorf("PathReadings(%q) = %q, want %q", tt.clean, got, tt.want)
		}
	}
}

func TestMatchesPrefix(t *testing.T) {
	tests := []struct {
		prefix, p  string
		fold, want bool
	}{
		{"/api/billing/", "/api/billing", false, true},
		{"/api/billing/", "/api/billing/x", false, true},
		{"/api/billing", "/api/billingx", false, false},
		{"/api/billing/", "/api/Billing/x", false, false},
		{"/api/billing/", "/api/Billing/x", true, true},
		{"/API/Billing/", "/api/billing/x", true, true},
		{"/", "/anything", false, true},
		{"/api/billing/", "/api", false, false},
	}
	for _, tt := range tests {
		if got := MatchesPrefix(tt.prefix, tt.p, tt.fold); got != tt.want {
			t.Errorf("MatchesPrefix(%q, %q, %v) = %v", tt.prefix, tt.p, tt.fold, got)
		}
	}
}

// TestUnusualLayerFastPath: the printable-ASCII shortcut answers as the
// rune-by-rune check does, on dot segments, parameters, trailing spaces,
// backslashes and control characters (which leave the shortcut).
func TestUnusualLayerFastPath(t *testing.T) {
	parts := []string{"", "/", "a", ".", "..", "...", ";", ";x", " ", "\\", "\t", "\x7f", "%2e", "api", "..;", ".. "}
	for _, a := range parts {
		for _, b := range parts {
			for _, c := range parts {
				p := "/" + a + "/" + b + c + "/" + c
				if got, want := unusualLayer(p), unusualRunes(p); got != want {
					t.Errorf("unusualLayer(%q) = %q, the rune check says %q", p, got, want)
				}
			}
		}
	}
}
