package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"jwtgate/models"
)

// A provider session's refresh cookie is
//
//	oidc:v1.<start>.<user>.<mac>:<token>
//
// start: when the session started (the callback), Unix seconds; user: the
// mirror key of the session's user, base64url of the JSON array
// [issuer, id]; mac: HMAC-SHA256, base64url, over everything before it
// and the token ("oidc:v1.<start>.<user>:<token>"), with a key derived
// from the client secret (oidcSessionKey), so every replica configured
// with the same client checks it and the page's owner can neither move
// the start, change the user, nor carry the stamp onto another token.
// The provider's refresh token is opaque: the stamp is what lets the
// gateway hold a session against the user's cutoff (logout-all, jwtgate
// users revoke, the admin API, deactivation) before refreshing it. A
// refresh carries the stamp over unchanged (a session's start never
// moves) with a new MAC over the rotated token.
const oidcStampVersion = "v1"

// oidcStamp is a provider session's authenticated stamp.
type oidcStamp struct {
	Start time.Time      // whole seconds
	User  models.UserKey // the mirror key of the session's user
}

// errSessionStamp refuses a provider session whose refresh cookie carries
// no valid stamp: forged, altered, or set before sessions were stamped.
var errSessionStamp = errors.New("oidc session: refresh cookie without a valid stamp")

// oidcSessionKey derives the session stamp's HMAC key from the client
// secret, with its own label: never the state cookie's key, never the
// secret itself.
func oidcSessionKey(clientSecret string) []byte {
	return oidcDerivedKey(clientSecret, "jwtgate oidc session stamp v1")
}

// sealSession renders the refresh cookie's value of a provider session:
// the mark, the stamp and its MAC, and the provider's refresh token.
func sealSession(key []byte, st oidcStamp, token string) string {
	user, _ := json.Marshal([]string{st.User.Issuer, st.User.ID})
	head := oidcRefreshMark + oidcStampVersion + "." + strconv.FormatInt(st.Start.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(user)
	return head + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(key, head, token)) + ":" + token
}

// sessionMAC is the stamp's MAC over head (the value up to the MAC) and
// the token; ':' cannot occur in head, so the pair is unambiguous.
func sessionMAC(key []byte, head, token string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(head))
	m.Write([]byte{':'})
	m.Write([]byte(token))
	return m.Sum(nil)
}

// splitSession splits a marked refresh cookie's value (the mark removed)
// into the stamp's text (empty when there is none: a cookie from before
// sessions were stamped) and the provider's refresh token.
func splitSession(rest string) (stamp, token string) {
	if !strings.HasPrefix(rest, oidcStampVersion+".") {
		return "", rest
	}
	stamp, token, ok := strings.Cut(rest, ":")
	if !ok {
		return "", rest
	}
	return stamp, token
}

// openSession checks a marked refresh cookie's value (the mark removed):
// the stamp's MAC (constant time) over the stamp and the token, then its
// fields. It returns the provider's refresh token even when the stamp
// fails, so the caller can revoke it.
func openSession(key []byte, rest string) (oidcStamp, string, error) {
	stamp, token := splitSession(rest)
	parts := strings.Split(stamp, ".")
	if stamp == "" || len(parts) != 4 || token == "" {
		return oidcStamp{}, token, errSessionStamp
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[3])
	head := oidcRefreshMark + strings.Join(parts[:3], ".")
	if err != nil || !hmac.Equal(got, sessionMAC(key, head, token)) {
		return oidcStamp{}, token, errSessionStamp
	}
	start, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return oidcStamp{}, token, errSessionStamp
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	var user []string
	if err != nil || json.Unmarshal(raw, &user) != nil || len(user) != 2 || user[1] == "" {
		return oidcStamp{}, token, errSessionStamp
	}
	return oidcStamp{Start: time.Unix(start, 0), User: models.UserKey{Issuer: user[0], ID: user[1]}}, token, nil
}
