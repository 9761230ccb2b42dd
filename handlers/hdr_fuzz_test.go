package handlers

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzHeaderClean: whatever header lines a client sends, after
// headerRules.clean no header of the identity namespace and no '_' or '.'
// spelling of an owned header is left, no two names fold together, and a
// header rule leaves no '_' or '.' spelling at all; a refusal means two
// spellings of one name really were sent.
func FuzzHeaderClean(f *testing.F) {
	f.Add("X-Tenant: a\r\nX_Tenant: b", false)
	f.Fuzz(func(t *testing.T, lines string, ruleReads bool) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /api/x HTTP/1.1\r\nHost: gw\r\n" + lines + "\r\n\r\n")))
		if err != nil {
			return
		}
		hr := newHeaderRules(newIdentity("X-User-"), "Authorization")
		before := req.Header.Clone()
		err = hr.clean(req.Header, ruleReads)
		if errors.Is(err, errHeaderSpellings) {
			if !hdrHasTwoSpellings(hr, before) {
				t.Fatalf("refused without two spellings: %q", hdrKeys(before))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for k := range req.Header {
			f := normalizeHeaderName(k)
			switch {
			case hr.idn.spoofed(k):
				t.Fatalf("%q of the identity namespace survived", k)
			case isAlias(k) && hr.isOwned(f):
				t.Fatalf("alias %q of an owned header survived", k)
			case isAlias(k) && ruleReads:
				t.Fatalf("alias %q survived a header rule", k)
			}
			if other, dup := seen[f]; dup {
				t.Fatalf("%q and %q both survived", other, k)
			}
			seen[f] = k
		}
	})
}

// hdrHasTwoSpellings reports whether two keys outside the identity
// namespace and the owned aliases fold to one name.
func hdrHasTwoSpellings(hr headerRules, h http.Header) bool {
	seen := map[string]bool{}
	for k := range h {
		f := normalizeHeaderName(k)
		if hr.idn.spoofed(k) || (isAlias(k) && hr.isOwned(f)) {
			continue
		}
		if seen[f] {
			return true
		}
		seen[f] = true
	}
	return false
}
