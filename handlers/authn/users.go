package authn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"jwtgate/models"
)

// ReasonNoUserSource is the refusal reason of a valid token whose issuer
// has no user endpoint (several issuers, user_endpoint: false).
const ReasonNoUserSource = "issuer_without_users"

// userKey returns the mirror key of the token's user and the issuer it
// belongs to. With one issuer the key is the plain id, as it always was.
// With several, the token's iss decides: it was checked by the local
// verifier (verify: local checks every new token, hybrid every request;
// a cached verdict is for this exact token text), so it is the issuer whose
// key signed the token. Only the issuer whose users the auth service holds
// (user_endpoint: true) can be resolved; another issuer's user 1 is not the
// auth service's user 1, and is refused until users can come from claims.
func (a *Authenticator) userKey(tok *models.Token) (models.UserKey, string, error) {
	if len(a.st().cfg.Issuers) < 2 {
		return models.UserKey{ID: tok.UserID}, a.st().cfg.Issuer, nil
	}
	if tok.Issuer == "" {
		return models.UserKey{}, "", errNoIssuer
	}
	if a.st().cfg.Users != nil {
		// Users come from the issuer's own claims:
		// every issuer's users resolve, each in its own namespace.
		return models.UserKey{Issuer: tok.Issuer, ID: tok.UserID}, tok.Issuer, nil
	}
	if tok.Issuer != a.st().cfg.Issuer {
		return models.UserKey{}, "", fmt.Errorf("issuer %q: %w", tok.Issuer, models.ErrNoUserSource)
	}
	// The auth service's users keep the namespace "" whichever iss its
	// tokens carry, so a mirror made before several issuers stays valid.
	return models.UserKey{ID: tok.UserID}, tok.Issuer, nil
}

// issuerName is the iss a user namespace stands for: the auth service's
// issuer for "", the namespace itself otherwise.
func (a *Authenticator) issuerName(ns string) string {
	if ns == "" {
		return a.st().cfg.Issuer
	}
	return ns
}

// flightKey is the singleflight key of one user fetch: the user's key and
// the token it is fetched with, length-prefixed so no two keys collide. The
// token is part of it because the answer can be about the token (expired
// on its way): one caller's expiring token must not refuse another
// caller's fresh one that happened to join the same flight.
func flightKey(k models.UserKey, raw string) string {
	tk := TokenKey(raw)
	return strconv.Itoa(len(k.Issuer)) + ":" + k.Issuer + strconv.Itoa(len(k.ID)) + ":" + k.ID + string(tk[:])
}

// user returns the cached user, or loads it once for all concurrent callers
// with the same token. now is the time of the request.
func (a *Authenticator) user(ctx context.Context, raw string, key models.UserKey, now time.Time) (*cachedUser, error) {
	if cu, ok := a.users.Get(key); ok && now.Before(cu.checkAt) {
		return cu, nil
	}
	ch := a.userCalls.DoChan(flightKey(key, raw), func() (any, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*a.st().cfg.CallTimeout)
		defer cancel()
		return a.loadUser(cctx, raw, key)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*cachedUser), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("user %q: %w", key, ctx.Err())
	}
}

// loadUser resolves a user whose cached record is missing or due for a
// re-fetch: the mirror, then the auth service with the caller's token.
// Only a definitive statement about the user (models.ErrUserRejected, or a
// record saying is_active: false) changes what the mirror says; a refused
// token or a 403 refuses this request and leaves the user as it was.
func (a *Authenticator) loadUser(ctx context.Context, raw string, key models.UserKey) (*cachedUser, error) {
	var stale *models.User
	var staleAttrs map[string]any // a cached record's: its Fields are not kept
	if cu, ok := a.users.Get(key); ok {
		if a.now().Before(cu.checkAt) { // another flight just refreshed it
			return cu, nil
		}
		stale, staleAttrs = &cu.user, cu.attrs
	} else {
		u, err := a.store.UserByKey(ctx, key)
		switch {
		case err == nil:
			if a.now().Sub(u.FetchedAt) < a.st().cfg.RefreshAfter {
				return a.remember(u, u.FetchedAt.Add(a.st().cfg.RefreshAfter)), nil
			}
			stale = &u
		case errors.Is(err, models.ErrNotFound):
		default:
			// The mirror is a cache of the auth service: carry on without it.
			a.log.ErrorContext(ctx, "user mirror read failed", "user_id", key.String(), "err", err)
		}
	}
	fetched, err := a.fetcher.FetchUser(ctx, raw, key.ID, a.now())
	switch {
	case err == nil && fetched.ID != key.ID:
		a.log.WarnContext(ctx, "auth service returned another user's record", "user_id", key.String(), "record_id", fetched.ID)
		return nil, fmt.Errorf("user %q: record is for %q: %w", key, fetched.ID, models.ErrUserRejected)
	case err == nil:
		a.fetched("ok")
		fetched.Issuer = key.Issuer
		if stale != nil {
			fetched.TokensValidAfter = stale.TokensValidAfter // a fetch never clears a cutoff
		}
		a.write(ctx, fetched)
		if !fetched.IsActive && (stale == nil || stale.IsActive) {
			// Gone inactive at the auth service: its tokens stop here too.
			fetched.TokensValidAfter = a.cutOff(ctx, key, "inactive at the auth service")
			a.userChanged(key)
		}
		return a.remember(fetched, fetched.FetchedAt.Add(a.st().cfg.RefreshAfter)), nil
	case errors.Is(err, models.ErrUserRejected):
		a.fetched("rejected")
		return nil, a.deactivate(ctx, key, stale, staleAttrs, err)
	case errors.Is(err, models.ErrTokenInvalid), errors.Is(err, models.ErrPermissionDenied):
		// About the token (expired on its way, say) or the caller's rights,
		// not the user: refuse this request, change nothing.
		a.fetched("token_refused")
		a.log.InfoContext(ctx, "auth service refused the token at the user endpoint; user unchanged", "user_id", key.String(), "err", err)
		return nil, fmt.Errorf("user %q: %w", key, err)
	default:
		a.fetched("unavailable")
		if stale == nil {
			return nil, fmt.Errorf("user %q: %w", key, err)
		}
		a.log.WarnContext(ctx, "auth service unreachable; serving stale user record", "user_id", key.String(), "fetched_at", stale.FetchedAt, "err", err)
		return a.rememberAttrs(*stale, staleAttrs, a.now().Add(min(a.st().cfg.RefreshAfter, staleRetry))), nil
	}
}

// deactivate handles the auth service's definitive word that a user is
// inactive or gone (err matches models.ErrUserRejected): a mirrored record
// is kept but marked inactive in the database, the cache and, through
// Peers, every replica. It returns the error to answer with.
func (a *Authenticator) deactivate(ctx context.Context, key models.UserKey, stale *models.User, staleAttrs map[string]any, err error) error {
	if stale == nil {
		if errors.Is(err, models.ErrUserInactive) {
			return fmt.Errorf("user %q: %w", key, models.ErrUserInactive)
		}
		return fmt.Errorf("user %q: %w", key, err)
	}
	a.log.InfoContext(ctx, "auth service says a mirrored user is inactive or gone; marking inactive", "user_id", key.String(), "err", err)
	u := *stale
	u.IsActive = false
	if werr := a.store.SetActiveByKey(ctx, key, false); werr != nil && !errors.Is(werr, models.ErrNotFound) {
		a.log.ErrorContext(ctx, "user mirror write failed", "user_id", key.String(), "err", werr)
	}
	if stale.IsActive {
		u.TokensValidAfter = a.cutOff(ctx, key, "inactive or gone at the auth service")
	}
	if stale.IsActive {
		a.userChanged(key)
	}
	a.rememberAttrs(u, staleAttrs, a.now().Add(a.st().cfg.RefreshAfter))
	return fmt.Errorf("user %q: %w", key, models.ErrUserInactive)
}

// userChanged tells the other replicas to evict a user.
func (a *Authenticator) userChanged(key models.UserKey) {
	if a.peers != nil {
		a.peers.UserChanged(key)
	}
}

// Mirror stores a freshly fetched record of the auth service's user (after
// a login, say) and caches it, keeping the user's cutoff (the mirror's: a
// fetch never carries one).
func (a *Authenticator) Mirror(ctx context.Context, u models.User) error {
	if cu, ok := a.users.Get(u.Key()); ok {
		u.TokensValidAfter = cu.user.TokensValidAfter
	} else if old, err := a.store.UserByKey(ctx, u.Key()); err == nil {
		u.TokensValidAfter = old.TokensValidAfter
	}
	err := a.write(ctx, u)
	a.remember(u, u.FetchedAt.Add(a.st().cfg.RefreshAfter))
	return err
}

func (a *Authenticator) write(ctx context.Context, u models.User) error {
	err := a.store.UpsertUser(ctx, u)
	a.obs.MirrorWritten(err)
	if err != nil {
		// The record stays cached in memory and is written on next fetch.
		a.log.ErrorContext(ctx, "user mirror write failed", "user_id", u.Key().String(), "err", err)
	}
	return err
}

func (a *Authenticator) remember(u models.User, checkAt time.Time) *cachedUser {
	return a.rememberAttrs(u, nil, checkAt)
}

// rememberAttrs caches a user with its rule attributes: attrs when given
// (a stale cached record, whose Fields are gone), else built from u, with
// "issuer" set by the gateway. The cached copy drops Fields: attrs holds
// every field already, and keeping both maps made the user cache half as
// big again (tests/load --memory-only).
func (a *Authenticator) rememberAttrs(u models.User, attrs map[string]any, checkAt time.Time) *cachedUser {
	switch {
	case attrs == nil:
		attrs = u.Attributes()
		attrs["issuer"] = a.issuerName(u.Issuer)
	case attrs["is_active"] != u.IsActive: // marked inactive: attrs are shared, so copy
		attrs = maps.Clone(attrs)
		attrs["is_active"] = u.IsActive
	}
	u.Fields = nil
	cu := &cachedUser{user: u, attrs: attrs, checkAt: checkAt}
	if u.TokensValidAfter != nil {
		cu.cutoff = u.TokensValidAfter.Unix()
	}
	a.users.Add(u.Key(), cu)
	return cu
}

// ForgetUser drops the auth service's user with this id from the user cache.
func (a *Authenticator) ForgetUser(id string) { a.users.Remove(models.UserKey{ID: id}) }

// ForgetUserKey drops a user from the user cache (for notifications from
// other replicas).
func (a *Authenticator) ForgetUserKey(k models.UserKey) { a.users.Remove(k) }
