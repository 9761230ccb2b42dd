package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// oidcStateCookiePrefix starts the name of a login's state cookie; the
// login's state follows, so two logins in one browser (two tabs) each keep
// their own cookie and neither overwrites the other's.
const oidcStateCookiePrefix = "oidc_login_"

// oidcStateTTL is how long a login may take between /auth/oidc/login and
// the callback (the state cookie's Max-Age and the expiry it carries).
const oidcStateTTL = 10 * time.Minute

// oidcLoginState is what a login started and its callback must match: the
// state, the nonce the ID token must carry, the PKCE verifier, the checked
// next and when it expires. It travels in an HttpOnly cookie whose value
// is authenticated (HMAC-SHA256), so no replica keeps anything and a
// login started on one replica finishes on any other that shares the key.
type oidcLoginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Expires  int64  `json:"e"`
}

// errOIDCState is every way a callback's state can fail to match: the
// cookie is missing, forged, expired or for another login.
var errOIDCState = newAPIError(400, codeBadRequest,
	"The login's state is missing, expired or does not match this browser; start again at /auth/oidc/login.")

// randomToken returns n random bytes, base64url (no padding).
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// oidcStateKey derives the state cookie's HMAC key from the client
// secret: every replica configured with the same client shares it, and
// the secret itself is never used as a MAC key for anything else.
func oidcStateKey(clientSecret string) []byte {
	return oidcDerivedKey(clientSecret, "jwtgate oidc login state v1")
}

// oidcDerivedKey is HMAC-SHA256(client secret, label): one key per use of
// the client secret, each under its own label.
func oidcDerivedKey(clientSecret, label string) []byte {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(label))
	return m.Sum(nil)
}

// stateCookieName is the cookie holding the login whose state is state.
func stateCookieName(state string) string { return oidcStateCookiePrefix + state }

// validState reports whether s looks like a state this gateway issued
// (43 base64url characters: 32 random bytes), so it can name a cookie.
func validState(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// sealState renders st as a cookie value: base64url(JSON) "." base64url(MAC).
func sealState(key []byte, st oidcLoginState) string {
	payload, _ := json.Marshal(st)
	p := base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// openState checks a state cookie's value: its MAC (constant time), its
// expiry, and that it belongs to state (constant time).
func openState(key []byte, value, state string, now time.Time) (oidcLoginState, error) {
	p, sig, ok := strings.Cut(value, ".")
	if !ok {
		return oidcLoginState{}, errors.New("state cookie: no MAC")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return oidcLoginState{}, errors.New("state cookie: MAC is not base64url")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p))
	if !hmac.Equal(got, m.Sum(nil)) {
		return oidcLoginState{}, errors.New("state cookie: MAC does not match")
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return oidcLoginState{}, errors.New("state cookie: payload is not base64url")
	}
	var st oidcLoginState
	if err := json.Unmarshal(payload, &st); err != nil {
		return oidcLoginState{}, errors.New("state cookie: payload is not JSON")
	}
	if now.Unix() >= st.Expires {
		return oidcLoginState{}, errors.New("state cookie: expired")
	}
	if subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		return oidcLoginState{}, errors.New("state cookie: another login's state")
	}
	return st, nil
}
