package handlers

import (
	"testing"
	"time"

	"jwtgate/models"
)

// TestSessionStamp: a sealed session opens to its stamp and token; the
// stamp does not survive another key, another token, or an edit, and
// unmarkRefresh finds the token (for revocation) with or without a stamp.
func TestSessionStamp(t *testing.T) {
	key := oidcSessionKey("secret")
	st := oidcStamp{Start: time.Unix(1700000000, 0), User: models.UserKey{Issuer: "https://idp.example", ID: "alice"}}
	sealed := sealSession(key, st, "tok-A")
	rest := sealed[len(oidcRefreshMark):]
	if got, tok, err := openSession(key, rest); err != nil || got != st || tok != "tok-A" {
		t.Fatalf("openSession = %+v, %q, %v", got, tok, err)
	}
	other := sealSession(key, st, "tok-B")
	tests := []struct{ name, rest, token string }{
		{"another key", sealSession(oidcSessionKey("other"), st, "tok-A")[len(oidcRefreshMark):], "tok-A"},
		{"stamp onto another token", rest[:len(rest)-len("tok-A")] + "tok-B", "tok-B"},
		{"another token's MAC", other[len(oidcRefreshMark):len(other)-len("tok-B")] + "tok-A", "tok-A"},
		{"start edited", "v1.1700000001" + rest[len("v1.1700000000"):], "tok-A"},
		{"no stamp", "tok-A", "tok-A"},
		{"empty token", rest[:len(rest)-len("tok-A")], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, tok, err := openSession(key, tt.rest); err == nil || tok != tt.token {
				t.Fatalf("openSession(%q) = token %q, err %v; want token %q and an error", tt.rest, tok, err, tt.token)
			}
		})
	}
	for v, want := range map[string]string{sealed: "tok-A", "oidc:tok-A": "tok-A"} {
		if tok, provider := unmarkRefresh(v); !provider || tok != want {
			t.Fatalf("unmarkRefresh(%q) = %q, %t", v, tok, provider)
		}
	}
}
