package authn

import (
	"context"
	"time"

	"jwtgate/models"
)

// errRevoked refuses a token logged out through the gateway.
var errRevoked = &models.TokenError{Reason: models.ReasonRevoked, Detail: "logged out"}

// isRevoked says whether the token with revocation key key was logged
// out, and counts the refusal.
func (a *Authenticator) isRevoked(key [32]byte, now time.Time) bool {
	until, ok := a.revoked.Get(key)
	if !ok || !now.Before(until) {
		return false
	}
	a.refused(models.ReasonRevoked)
	return true
}

// ForgetTokenKey drops a token by its cache key (for notifications from
// other replicas, which carry hashes, never tokens).
func (a *Authenticator) ForgetTokenKey(key [32]byte) {
	a.tokens.Remove(key)
	a.rejected.Remove(key)
}

// Revoke handles a token the client named in a successful blacklist call.
// The token is first checked as an API call would check it (verify cache,
// or a call home): only a token that verified is acted on beyond local
// eviction, so made-up strings can neither push real revocations out of
// the bounded list nor make replicas notify each other. A verified token
// is evicted here and, through Peers, on every replica, so the next use
// asks the auth service again; with RevokeOnLogout (logout at the edge)
// it is also refused, by its revocation key (its jti: every spelling),
// until it expires, even though SimpleJWT's verify endpoint keeps
// accepting access tokens after a logout.
func (a *Authenticator) Revoke(ctx context.Context, raw string) {
	textKey := TokenKey(raw)
	if _, err := models.PrecheckToken(raw, a.st().cfg.UserIDClaim, a.st().cfg.Leeway, a.now()); err != nil {
		a.ForgetTokenKey(textKey) // harmless for junk: only this exact text
		return                    // the refresh token, or junk: not counted as a refusal
	}
	tok, err := a.Token(ctx, raw) // the verify cache, or a call home
	a.ForgetTokenKey(textKey)     // the next use asks the auth service again
	if err != nil {
		return // forged, or already revoked: nothing to record
	}
	var until time.Time
	if a.st().cfg.RevokeOnLogout {
		until = tok.Expires
	}
	a.RevokeKey(tok.Key, until)
	if a.peers != nil {
		if tok.Key != textKey {
			a.peers.TokenRevoked(textKey, time.Time{}) // evict the verdict keyed by text
		}
		a.peers.TokenRevoked(tok.Key, until)
	}
}

// RevokeKey evicts a token by its hash and refuses it until until (zero:
// evict only). key is a revocation key (models.Token.Key) or, for a
// verdict keyed by text, TokenKey. It does not tell peers: it is what a
// peer's message calls.
func (a *Authenticator) RevokeKey(key [32]byte, until time.Time) {
	if a.now().Before(until) {
		a.revoked.Add(key, until)
	}
	a.ForgetTokenKey(key)
}

// ForgetAll empties the verify and user caches (revocations stay). A
// replica calls it when it may have missed its peers' messages.
func (a *Authenticator) ForgetAll() {
	a.tokens.Purge()
	a.users.Purge()
}
