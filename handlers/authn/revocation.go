package authn

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"jwtgate/models"
)

// errRevoked refuses a token logged out through the gateway.
var errRevoked = &models.TokenError{Reason: models.ReasonRevoked, Detail: "logged out"}

// errUserRevoked refuses a token issued before its user's cutoff
// (models.User.TokensValidAfter), or without an iat while one is set.
var errUserRevoked = &models.TokenError{Reason: models.ReasonRevoked, Detail: "revoked: issued before the user's tokens were revoked"}

// revokedSet holds the logged-out tokens, by revocation key, with their
// exp in Unix nanoseconds. It has no size bound and no eviction: an entry
// leaves only when its token has expired (prune). Only a token that
// verified can enter (Revoke), so it holds at most the unexpired tokens
// the auth service issued and their owners logged out: a junk token, or a
// flood of hints, cannot add entries or push a real one out, so the set
// cannot be flushed the way the old 10 000-entry LRU could.
type revokedSet struct {
	mu        sync.RWMutex
	m         map[[32]byte]int64
	nextPrune int // prune on add once the map reaches this size
	// n is len(m), stored under mu after every change: every request asks
	// until, and while nothing is revoked (the usual case) it answers
	// without taking the read lock, whose counter every core would write.
	// A revocation stores n before RevokeKey returns, so a request that
	// starts after it sees n > 0 and looks the key up.
	n atomic.Int64
}

func newRevokedSet() *revokedSet { return &revokedSet{m: map[[32]byte]int64{}, nextPrune: 1024} }

// until returns the expiry of a revoked key (Unix nanoseconds).
func (s *revokedSet) until(key [32]byte) (int64, bool) {
	if s.n.Load() == 0 {
		return 0, false
	}
	s.mu.RLock()
	u, ok := s.m[key]
	s.mu.RUnlock()
	return u, ok
}

// add records key until until (Unix nanoseconds), pruning expired entries
// when the map has doubled since the last prune.
func (s *revokedSet) add(key [32]byte, until, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until > s.m[key] {
		s.m[key] = until
	}
	if len(s.m) >= s.nextPrune {
		s.pruneLocked(now)
		s.nextPrune = max(1024, 2*len(s.m))
	}
	s.n.Store(int64(len(s.m)))
}

// prune drops the entries whose token has expired at now.
func (s *revokedSet) prune(now int64) {
	s.mu.Lock()
	s.pruneLocked(now)
	s.n.Store(int64(len(s.m)))
	s.mu.Unlock()
}

func (s *revokedSet) pruneLocked(now int64) {
	for k, u := range s.m {
		if u <= now {
			delete(s.m, k)
		}
	}
}

func (s *revokedSet) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// isRevoked says whether the token with revocation key key was logged
// out, and counts the refusal.
func (a *Authenticator) isRevoked(key [32]byte, now time.Time) bool {
	until, ok := a.revoked.until(key)
	if !ok || now.UnixNano() >= until {
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
// eviction, so made-up strings can neither add revocations nor make
// replicas notify each other. A verified token is evicted here and,
// through Peers, on every replica, so the next use asks the auth service
// again; with RevokeOnLogout (logout at the edge) it is also refused, by
// its revocation key (its jti: every spelling), until it expires: written
// to the revocation table (Revocations), so a restart or a replica started
// later refuses it too, even though SimpleJWT's verify endpoint keeps
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
	a.unshare(ctx, textKey) // every replica's next use too (the others are told below)
	var until time.Time
	if a.st().cfg.RevokeOnLogout {
		until = tok.Expires
		if a.revocations != nil {
			if err := a.revocations.RevokeToken(ctx, tok.Key, until); err != nil {
				// Refused here until exp regardless; other replicas and a
				// restart will not know it.
				a.log.ErrorContext(ctx, "could not persist a logout", "user_id", tok.UserID, "err", err)
			}
		}
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
// verdict keyed by text, TokenKey. It does not tell peers and writes
// nothing: callers pass what they read from the revocation table (or what
// this replica verified).
func (a *Authenticator) RevokeKey(key [32]byte, until time.Time) {
	if now := a.now(); now.Before(until) {
		a.revoked.add(key, until.UnixNano(), now.UnixNano())
	}
	a.ForgetTokenKey(key)
}

// LoadRevocations adds every unexpired revocation of
// the table to memory (at start, and after a gap in notifications), and prunes the
// expired ones from memory.
func (a *Authenticator) LoadRevocations(ctx context.Context) error {
	if a.revocations == nil {
		return nil
	}
	now := a.now()
	rs, err := a.revocations.RevokedTokens(ctx, now)
	if err != nil {
		return err
	}
	for k, until := range rs {
		a.RevokeKey(k, until)
	}
	a.revoked.prune(now.UnixNano())
	return nil
}

// PruneRevocations drops logged-out tokens that have expired from memory.
func (a *Authenticator) PruneRevocations() { a.revoked.prune(a.now().UnixNano()) }

// RevokedLen returns how many logged-out tokens are held in memory.
func (a *Authenticator) RevokedLen() int { return a.revoked.len() }

// RevokeUser sets the user's cutoff to now (this second): every token of
// the user issued in an earlier second, or without an iat, is refused from
// now on, here at once and on the other replicas as soon as they read the
// change. The cutoff is whole seconds, as SimpleJWT's iat is: a token
// issued in the same second as the cutoff is accepted, so a login right
// after a revoke works; a token issued less than a second before it
// survives (the price of second-resolution iat). reason is logged. Logout-all, the admin API and a
// password change through the gateway call it.
func (a *Authenticator) RevokeUser(ctx context.Context, key models.UserKey, reason string) error {
	t := a.now().UTC().Truncate(time.Second)
	if err := a.store.SetTokensValidAfter(ctx, key, t); err != nil {
		return fmt.Errorf("revoke user %q: %w", key, err)
	}
	a.log.InfoContext(ctx, "user's tokens revoked", "user_id", key.String(), "reason", reason, "valid_after", t)
	a.users.Remove(key) // re-read with its cutoff on next use
	a.userChanged(key)
	return nil
}

// cutOff is RevokeUser for the automatic cases (a re-fetch found the user
// inactive or gone): a failure is logged, not returned, and it returns the
// cutoff to cache.
func (a *Authenticator) cutOff(ctx context.Context, key models.UserKey, reason string) *time.Time {
	t := a.now().UTC().Truncate(time.Second)
	if err := a.store.SetTokensValidAfter(ctx, key, t); err != nil {
		a.log.ErrorContext(ctx, "could not store the user's token cutoff", "user_id", key.String(), "err", err)
	} else {
		a.log.InfoContext(ctx, "user's tokens revoked", "user_id", key.String(), "reason", reason, "valid_after", t)
	}
	return &t
}

// ForgetUsers empties the user cache: every user is read again from the
// mirror (with its cutoff) on next use.
func (a *Authenticator) ForgetUsers() { a.users.Purge() }

// ForgetAll empties the verify and user caches (revocations stay). A
// replica calls it when it may have missed its peers' messages.
func (a *Authenticator) ForgetAll() {
	a.tokens.Purge()
	a.users.Purge()
}

// SetUserActive sets a mirrored user's active flag (the admin API; the CLI
// writes the same columns). Deactivating also sets the cutoff to now, so
// the user's tokens stay refused even after the auth service's word
// reactivates the flag at the next re-fetch (users.refresh_after): the
// auth service is the source of truth for is_active, the gateway for which
// tokens it refuses. ErrNotFound when the user is not in the mirror.
func (a *Authenticator) SetUserActive(ctx context.Context, key models.UserKey, active bool, reason string) error {
	if err := a.store.SetActiveByKey(ctx, key, active); err != nil {
		return fmt.Errorf("set user %q active=%t: %w", key, active, err)
	}
	if !active {
		return a.RevokeUser(ctx, key, reason)
	}
	a.users.Remove(key)
	a.userChanged(key)
	return nil
}

// CheckRefresh refuses a refresh token issued before its user's cutoff (or
// without an iat while one is set), before it reaches the auth service.
// SimpleJWT copies a refresh token's iat into the access tokens it makes
// (they would be refused anyway), but a rotated refresh token gets a new
// iat: without this check a refresh token stolen before a logout-all
// would, refreshed twice, yield tokens the cutoff no longer catches. The
// claims are read unverified: the auth service still checks the
// signature, and a forged iat can only make a token refused here.
func (a *Authenticator) CheckRefresh(ctx context.Context, raw string) error {
	if len(raw) > models.MaxTokenBytes {
		return nil // the auth service refuses it
	}
	claims, err := models.TokenClaims(raw)
	if err != nil {
		return nil
	}
	uid, ok := models.IDString(claims[a.st().cfg.UserIDClaim])
	if !ok {
		return nil
	}
	key := models.UserKey{ID: uid} // refresh tokens are the auth service's
	cutoff, _ := a.userCutoff(ctx, key)
	if cutoff == 0 {
		return nil
	}
	var iat int64 // TokenClaims made numbers int64 or float64
	switch v := claims["iat"].(type) {
	case int64:
		iat = v
	case float64:
		iat = int64(v)
	}
	if iat < cutoff {
		a.refused(models.ReasonRevoked)
		return errUserRevoked
	}
	return nil
}

// userCutoff returns the user's cutoff (Unix seconds, 0: none) and whether
// the user is active, as the decision knows them: the cached user, else
// the mirror. A user the mirror does not hold (or a mirror that cannot be
// read: the decision carries on without it too) has no cutoff and counts
// as active; the auth service or provider has the last word then.
func (a *Authenticator) userCutoff(ctx context.Context, key models.UserKey) (cutoff int64, active bool) {
	if cu, ok := a.users.Get(key); ok {
		return cu.cutoff, cu.user.IsActive
	}
	u, err := a.store.UserByKey(ctx, key)
	if err != nil {
		return 0, true
	}
	if u.TokensValidAfter != nil {
		cutoff = u.TokensValidAfter.Unix()
	}
	return cutoff, u.IsActive
}

// CheckSession refuses a browser session the provider login started at
// start for the user key, before its refresh token goes to the provider:
// ErrUserInactive when the user is inactive, a revocation (401
// token_not_valid, "revoked") when the user's cutoff is after the
// session's start. Both are the decision's answers for an access token of
// that user issued at start. start is compared in whole seconds, as an
// iat is: a session started in the cutoff's own second is accepted (a
// login right after a logout-all works), one started in an earlier second
// is refused. The provider's refresh tokens are opaque: without this
// check a refresh would yield access tokens issued after the cutoff, and
// "log out everywhere" would not end the session.
func (a *Authenticator) CheckSession(ctx context.Context, key models.UserKey, start time.Time) error {
	cutoff, active := a.userCutoff(ctx, key)
	if !active {
		a.refused(models.ReasonInactive)
		return fmt.Errorf("user %q: %w", key, models.ErrUserInactive)
	}
	if cutoff != 0 && start.Unix() < cutoff {
		a.refused(models.ReasonRevoked)
		return errUserRevoked
	}
	return nil
}
