package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
	"unique"

	"jwtgate/models"
)

// retriedKey marks a context whose request already waited on a call
// another client's budget refused.
type retriedKey struct{}

// reasonThrottled is the refusal reason of a call home over the budget.
const reasonThrottled = "throttled"

// ThrottledError refuses a request whose call home the client's
// CallBudget does not allow.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("calls home throttled for this client; retry after %s", e.RetryAfter)
}

// verdict is a cached positive answer. It is kept small, times as Unix
// nanoseconds and no claims: with 100 000 cached tokens the verdicts are
// most of the gateway's memory (tests/load --memory-only).
type verdict struct {
	alg, kid, userID string
	iss              string   // interned: one copy per issuer, not per verdict
	exp              int64    // the token's exp
	iat              int64    // the token's iat, whole Unix seconds (0: none), for the user's cutoff
	expires          int64    // min(now+ttl, exp)
	key              [32]byte // the token's revocation key (models.Token.Key)
}

func newVerdict(tok models.Token, expires time.Time) verdict {
	return verdict{alg: tok.Alg, kid: tok.Kid, userID: tok.UserID, iss: unique.Make(tok.Issuer).Value(), exp: tok.Expires.UnixNano(), iat: tok.IssuedAt, expires: expires.UnixNano(), key: tok.Key}
}

// token is the cached token, without its claims (see Principal.Claims).
func (v *verdict) token() models.Token {
	return models.Token{Alg: v.alg, Kid: v.kid, UserID: v.userID, Issuer: v.iss, Expires: time.Unix(0, v.exp), IssuedAt: v.iat, Key: v.key}
}

// TokenKey is the verify cache key of a token: its SHA-256, so raw tokens
// are never kept as map keys. Only canonical spellings pass the
// pre-checks; revocations are keyed by models.Token.Key, which is one per
// token even where two spellings verify (ECDSA's (r, s) and (r, n-s)).
func TokenKey(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }

// Token checks a token without resolving its user. The returned Claims are
// nil when the verdict came from the cache (see Principal.Claims).
func (a *Authenticator) Token(ctx context.Context, raw string) (models.Token, error) {
	if len(raw) > models.MaxTokenBytes {
		a.refused(models.ReasonTooLarge)
		return models.Token{}, &models.TokenError{Reason: models.ReasonTooLarge, Detail: "token too long"}
	}
	key := TokenKey(raw)
	now := a.now()
	var stale *verdict // past its TTL, but servable if the auth service is down
	known := false     // verified before and not expired: never limited by CallsHome
	if v, ok := a.tokens.Get(key); ok {
		known = now.UnixNano() < v.exp
		if a.isRevoked(v.key, now) {
			return models.Token{}, errRevoked
		}
		if n := now.UnixNano(); n < v.expires {
			a.obs.CacheHit()
			tok := v.token()
			if err := a.checkLocal(ctx, raw, tok); err != nil {
				return models.Token{}, err
			}
			return tok, nil
		}
		if n := now.UnixNano(); n < v.exp && n < v.expires+int64(a.cfg.StaleGrace) {
			stale = &v
		} else {
			a.tokens.Remove(key)
		}
	}
	if until, ok := a.rejected.Get(key); ok && now.Before(until) {
		a.obs.NegativeHit()
		a.refused(models.ReasonRejected)
		return models.Token{}, &models.TokenError{Reason: models.ReasonRejected, Detail: "rejected by the auth service (cached)"}
	}
	a.obs.CacheMiss()
	tok, err := models.PrecheckToken(raw, a.cfg.UserIDClaim, a.cfg.Leeway, now)
	if err != nil {
		a.refused(models.TokenReason(err))
		return models.Token{}, err
	}
	if a.isRevoked(tok.Key, now) {
		return models.Token{}, errRevoked
	}
	if err := a.checkLocal(ctx, raw, tok); err != nil {
		if errors.Is(err, models.ErrTokenInvalid) && a.cfg.NegativeTTL > 0 {
			a.rejected.Add(key, a.now().Add(a.cfg.NegativeTTL))
		}
		return models.Token{}, err
	}
	led := false // this request started the call (waiters on another's call spend nothing)
	ch := a.tokenCalls.DoChan(string(key[:]), func() (any, error) {
		led = true
		if !known && a.cfg.CallsHome != nil {
			if ok, wait := a.cfg.CallsHome.Take(ctx); !ok {
				return nil, &ThrottledError{RetryAfter: wait}
			}
		}
		// Shared by every waiter: run it on a context no single caller can
		// cancel, bounded by its own timeout.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.CallTimeout)
		defer cancel()
		err := verify(cctx, a.verifier, raw, tok)
		switch {
		case err == nil:
			expires := a.now().Add(a.cfg.TTL)
			if tok.Expires.Before(expires) {
				expires = tok.Expires
			}
			// The verdict keeps no claims: their map was half of the
			// cache's memory, and only allow rules that read claims need
			// them, decoded again from the request's token (Principal.Claims).
			if a.tokens.Add(key, newVerdict(tok, expires)) {
				a.obs.Evicted()
			}
		case errors.Is(err, models.ErrTokenInvalid):
			a.tokens.Remove(key) // a stale verdict must not outlive a refusal
			if a.cfg.NegativeTTL > 0 {
				a.rejected.Add(key, a.now().Add(a.cfg.NegativeTTL))
			}
		}
		return nil, err
	})
	select {
	case res := <-ch:
		if res.Shared {
			a.obs.Coalesced()
		}
		if res.Err != nil {
			var throttled *ThrottledError
			if errors.As(res.Err, &throttled) {
				if !led && ctx.Value(retriedKey{}) == nil {
					// Another client's budget refused the call we waited
					// for: try once on our own.
					return a.Token(context.WithValue(ctx, retriedKey{}, true), raw)
				}
				a.refused(reasonThrottled)
				return models.Token{}, res.Err
			}
			if stale != nil && errors.Is(res.Err, models.ErrAuthUnavailable) {
				a.obs.StaleServed()
				return stale.token(), nil
			}
			if reason := models.TokenReason(res.Err); reason != "" {
				a.refused(reason)
			}
			return models.Token{}, res.Err
		}
		return tok, nil
	case <-ctx.Done():
		return models.Token{}, fmt.Errorf("verify: %w", ctx.Err())
	}
}

// tokenVerifier is a Verifier that can take the token as the pre-checks
// decoded it (the local verifier: it picks the issuer's keys by
// tok.Issuer), so a token is not decoded again to read its iss.
type tokenVerifier interface {
	VerifyToken(ctx context.Context, raw string, tok models.Token) error
}

// verify asks v about raw, passing the pre-checked tok when v takes it.
func verify(ctx context.Context, v Verifier, raw string, tok models.Token) error {
	if tv, ok := v.(tokenVerifier); ok {
		return tv.VerifyToken(ctx, raw, tok)
	}
	return v.Verify(ctx, raw)
}

// checkLocal runs the every-request local check of verify: hybrid. tok is
// raw as the pre-checks decoded it (or its cached verdict).
func (a *Authenticator) checkLocal(ctx context.Context, raw string, tok models.Token) error {
	if a.local == nil {
		return nil
	}
	err := verify(ctx, a.local, raw, tok)
	if reason := models.TokenReason(err); reason != "" {
		a.refused(reason)
	}
	return err
}
