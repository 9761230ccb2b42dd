package handlers

import (
	"strings"
	"testing"
)

// forwardedMetaRef is isForwardedMeta's definition, spelled out: the
// folded name is in the X-Forwarded- namespace or one of forwardedNames.
func forwardedMetaRef(name string) bool {
	f := normalizeHeaderName(name)
	return strings.HasPrefix(f, forwardedPrefix) || forwardedNames[f]
}

// TestIsForwardedMetaSpellings checks isForwardedMeta, which skips names of
// other lengths than forwardedNames' without folding them, against its
// definition: every forwarded name in every spelling a client could send,
// names one byte longer or shorter, and names a client could use to hide
// one (a prefix, a suffix, a lookalike).
func TestIsForwardedMetaSpellings(t *testing.T) {
	var names []string
	for n := range forwardedNames {
		names = append(names, n)
	}
	names = append(names, "x-forwarded-for", "x-forwarded-host", "x-forwarded-", "x-forwarded", "x-forwardedfor",
		"authorization", "cookie", "x-real-i", "x-real-ipp", "xx-real-ip", "forwarde", "forwardedd", "x-original-ur",
		"x-original-uris", "x-original-metho", "x-original-methods", "x-original-url", "x-request-id", "", "x",
		"x-real-ip-x-real-ip-x-real-ip-x-real-ip")
	spellings := []func(string) string{
		func(s string) string { return s },
		strings.ToUpper,
		func(s string) string { return strings.ReplaceAll(s, "-", "_") },
		func(s string) string { return strings.ReplaceAll(s, "-", ".") },
		canonicalHeader,
		func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) },
		func(s string) string { // mixed: X_Real.Ip
			b := []byte(canonicalHeader(s))
			seps := 0
			for i, c := range b {
				if c == '-' {
					b[i] = "_."[seps%2]
					seps++
				}
			}
			return string(b)
		},
	}
	positives := 0
	for _, n := range names {
		for _, sp := range spellings {
			name := sp(n)
			want := forwardedMetaRef(name)
			if got := isForwardedMeta(name); got != want {
				t.Errorf("isForwardedMeta(%q) = %v, want %v", name, got, want)
			}
			if want {
				positives++
			}
		}
	}
	// Every forwarded name, in every spelling, is caught.
	if min := len(forwardedNames) * len(spellings); positives < min {
		t.Errorf("only %d forwarded spellings caught, want at least %d", positives, min)
	}
}

// FuzzIsForwardedMeta compares isForwardedMeta with its definition on any
// name.
func FuzzIsForwardedMeta(f *testing.F) {
	for _, s := range []string{"X-Real-Ip", "x_original.method", "Forwarded", "X-Forwarded-For", "Authorization"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := isForwardedMeta(name), forwardedMetaRef(name); got != want {
			t.Fatalf("isForwardedMeta(%q) = %v, want %v", name, got, want)
		}
	})
}
