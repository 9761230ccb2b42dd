package authn

import (
	"context"
	"errors"
	"fmt"

	"jwtgate/models"
)

// claimsUser resolves the caller of users.source: claims. The record is
// built from the verified token's claims (Config.Users) and written to the
// mirror only when the user is first seen or the claims say something the
// mirror does not; a token whose verdict is cached maps to the cached user
// without decoding anything, so the warm path does no database I/O.
func (a *Authenticator) claimsUser(ctx context.Context, raw string, tok models.Token, key models.UserKey) (*cachedUser, error) {
	cu, cached := a.users.Get(key)
	if cached && tok.Claims == nil {
		// A cached verdict: this token was mapped when it was verified.
		return cu, nil
	}
	claims := tok.Claims
	if claims == nil {
		c, err := models.TokenClaims(raw)
		if err != nil {
			// An opaque token (verify: introspect) whose verdict is cached
			// but whose user left the cache: the mirror wrote it down when
			// the token was introspected.
			u, serr := a.store.UserByKey(ctx, key)
			if serr != nil {
				return nil, fmt.Errorf("user %q: %w: %w", key, models.ErrAuthUnavailable, serr)
			}
			return a.remember(u, a.now().Add(a.st().cfg.RefreshAfter)), nil
		}
		claims = c
	}
	u, err := a.st().cfg.Users.User(key.Issuer, claims, a.now())
	if err != nil {
		a.log.WarnContext(ctx, "users from claims: cannot map the token's claims", "user_id", key.String(), "err", err)
		if errors.Is(err, models.ErrUserRejected) {
			return nil, fmt.Errorf("user %q: %w", key, err)
		}
		return nil, fmt.Errorf("user %q: %w: %w", key, models.ErrUserRejected, err)
	}
	if u.ID != key.ID {
		return nil, fmt.Errorf("user %q: users.claims.id gives %q, auth.user_id_claim %q: %w", key, u.ID, key.ID, models.ErrUserRejected)
	}
	if cached {
		if models.SameUser(cu.recorded(u.Fields), u) {
			return cu, nil
		}
		u.IsActive = cu.user.IsActive // deactivated in the mirror stays so
	} else {
		stored, err := a.store.UserByKey(ctx, key)
		switch {
		case err == nil:
			u.IsActive = stored.IsActive
			if models.SameUser(stored, u) {
				return a.remember(stored, a.now().Add(a.st().cfg.RefreshAfter)), nil
			}
		case errors.Is(err, models.ErrNotFound):
		default:
			a.log.ErrorContext(ctx, "user mirror read failed", "user_id", key.String(), "err", err)
		}
	}
	a.write(ctx, u) // the record stays cached even if the write failed
	return a.remember(u, a.now().Add(a.st().cfg.RefreshAfter)), nil
}

// recorded returns the cached record with its extra fields taken back
// from attrs (the cached copy drops Fields), for the names in like.
func (cu *cachedUser) recorded(like map[string]any) models.User {
	u := cu.user
	if len(like) > 0 {
		u.Fields = make(map[string]any, len(like))
		for k := range like {
			if v, ok := cu.attrs[k]; ok {
				u.Fields[k] = v
			}
		}
	}
	return u
}
