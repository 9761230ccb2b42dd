package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

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

// verdict is a cached positive answer: times as Unix nanoseconds, no
// claims. The verify cache stores it as a storedVerdict, whose strings
// (the user id, and the alg, kid and iss many tokens share) are ids into
// the cache's intern tables: one copy of each string however many tokens
// carry it, and no pointers in the cache's slots for the garbage
// collector to scan. With 100 000 cached tokens the verdicts are most of
// the gateway's memory (tests/load --memory-only).
type verdict struct {
	meta    tokenMeta
	userID  string
	exp     int64    // the token's exp
	iat     int64    // the token's iat, whole Unix seconds (0: none), for the user's cutoff
	expires int64    // min(now+ttl, exp)
	key     [32]byte // the token's revocation key (models.Token.Key)
}

// tokenMeta is what many tokens share: their signing key and issuer.
type tokenMeta struct{ alg, kid, iss string }

// clone returns m with its strings copied, so that an interned m keeps no
// token's buffer alive.
func (m tokenMeta) clone() tokenMeta {
	return tokenMeta{alg: strings.Clone(m.alg), kid: strings.Clone(m.kid), iss: strings.Clone(m.iss)}
}

func newVerdict(tok models.Token, expires time.Time) verdict {
	return verdict{
		meta:   tokenMeta{alg: tok.Alg, kid: tok.Kid, iss: tok.Issuer},
		userID: tok.UserID,
		exp:    tok.Expires.UnixNano(), iat: tok.IssuedAt, expires: expires.UnixNano(), key: tok.Key,
	}
}

// token is the cached token, without its claims (see Principal.Claims).
func (v *verdict) token() models.Token {
	return models.Token{Alg: v.meta.alg, Kid: v.meta.kid, UserID: v.userID, Issuer: v.meta.iss, Expires: time.Unix(0, v.exp), IssuedAt: v.iat, Key: v.key}
}

// TokenKey is the verify cache key of a token: its SHA-256, so raw tokens
// are never kept as map keys. Only canonical spellings pass the
// pre-checks; revocations are keyed by models.Token.Key, which is one per
// token even where two spellings verify (ECDSA's (r, s) and (r, n-s)).
// The text is hashed in place: []byte(raw) would copy every token longer
// than 32 bytes to the heap on every request.
func TokenKey(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw))) // read only
}

// Token checks a token without resolving its user. The returned Claims are
// nil when the verdict came from the cache (see Principal.Claims).
func (a *Authenticator) Token(ctx context.Context, raw string) (models.Token, error) {
	var tok models.Token
	_, err := a.token(ctx, raw, a.now(), ctx.Value(revalidateKey{}) != nil, &tok)
	return tok, err
}

// token is Token at now. revalidating says ctx is a background
// revalidation's (it carries revalidateKey): passed in, so the request path
// (Authenticate, never a revalidation) does not walk the request's context
// chain to look for it. hit reports a fresh verdict served from the cache,
// without blocking: now is still the time then. The token is written to
// dst (Authenticate's Principal.Token: not copied through returns).
func (a *Authenticator) token(ctx context.Context, raw string, now time.Time, revalidating bool, dst *models.Token) (hit bool, _ error) {
	if a.st().cfg.Introspect != nil {
		tok, err := a.introspected(ctx, raw)
		*dst = tok
		return false, err
	}
	if len(raw) > models.MaxTokenBytes {
		a.refused(models.ReasonTooLarge)
		return false, &models.TokenError{Reason: models.ReasonTooLarge, Detail: "token too long"}
	}
	key := TokenKey(raw)
	var stale *verdict // past its TTL, but servable if the auth service is down
	known := false     // verified before and not expired: never limited by CallsHome
	if v, ok := a.tokens.Get(key); ok {
		known = now.UnixNano() < v.exp
		if a.isRevoked(v.key, now) {
			return false, errRevoked
		}
		if n := now.UnixNano(); n < v.expires && !revalidating {
			a.obs.CacheHit()
			if a.st().local != nil {
				tok := v.token()
				if err := a.checkLocal(ctx, raw, &tok); err != nil {
					return false, err
				}
			}
			a.refreshAhead(ctx, raw, key, &v, n)
			*dst = v.token()
			return true, nil
		}
		if n := now.UnixNano(); n < v.exp && n < v.expires+int64(a.st().cfg.StaleGrace) {
			stale = &v
		} else {
			a.tokens.Remove(key)
		}
	}
	if until, ok := a.rejected.Get(key); ok && now.Before(until) {
		a.obs.NegativeHit()
		a.refused(models.ReasonRejected)
		return false, &models.TokenError{Reason: models.ReasonRejected, Detail: "rejected by the auth service (cached)"}
	}
	a.obs.CacheMiss()
	tok, err := models.PrecheckToken(raw, a.st().cfg.UserIDClaim, a.st().cfg.Leeway, now)
	if err != nil {
		a.refused(models.TokenReason(err))
		return false, err
	}
	if a.isRevoked(tok.Key, now) {
		return false, errRevoked
	}
	if err := a.checkLocal(ctx, raw, &tok); err != nil {
		if errors.Is(err, models.ErrTokenInvalid) && a.st().cfg.NegativeTTL > 0 {
			a.rejected.Add(key, a.now().Add(a.st().cfg.NegativeTTL))
		}
		return false, err
	}
	if a.inProcess() {
		tok, err := a.verifyInProcess(ctx, raw, key, tok, stale)
		*dst = tok
		return false, err
	}
	// The call home is coalesced in its own function: the closure there
	// captures its own copy of tok, so tok here stays on the stack for
	// the in-process path above (one allocation of ~0.2 KB per new token).
	return a.coalesced(ctx, raw, key, tok, known, stale, revalidating, dst)
}

// coalesced is token's call home, shared by the requests that ask about
// the same token at once (tokenCalls): the second level, the CallsHome
// budget, then the verifier, on a context no single caller can cancel.
func (a *Authenticator) coalesced(ctx context.Context, raw string, key [32]byte, tok models.Token, known bool, stale *verdict, revalidating bool, dst *models.Token) (hit bool, _ error) {
	led := false   // this request started the call (waiters on another's call spend nothing)
	callKey := key // slicing key itself would move it to the heap, on every request (it is captured below)
	ch := a.tokenCalls.DoChan(string(callKey[:]), func() (any, error) {
		led = true
		// The second level (shared by the replicas), before any call
		// home: one lookup for all the waiters.
		if a.sharedLookup(ctx, key, tok) {
			return nil, nil
		}
		if !known && a.st().cfg.CallsHome != nil {
			if ok, wait := a.st().cfg.CallsHome.Take(ctx); !ok {
				return nil, &ThrottledError{RetryAfter: wait}
			}
		}
		// Shared by every waiter: run it on a context no single caller can
		// cancel, bounded by its own timeout.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.st().cfg.CallTimeout)
		defer cancel()
		return nil, a.verifyAndStore(cctx, raw, key, tok)
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
					return a.token(context.WithValue(ctx, retriedKey{}, true), raw, a.now(), revalidating, dst)
				}
				a.refused(reasonThrottled)
				return false, res.Err
			}
			if stale != nil && errors.Is(res.Err, models.ErrAuthUnavailable) {
				a.obs.StaleServed()
				*dst = stale.token()
				return false, nil
			}
			if reason := models.TokenReason(res.Err); reason != "" {
				a.refused(reason)
			}
			return false, res.Err
		}
		*dst = tok
		return false, nil
	case <-ctx.Done():
		return false, fmt.Errorf("verify: %w", ctx.Err())
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
// raw as the pre-checks decoded it (or its cached verdict); a pointer, so
// the common case (no local check) copies no token.
func (a *Authenticator) checkLocal(ctx context.Context, raw string, tok *models.Token) error {
	local := a.st().local
	if local == nil {
		return nil
	}
	err := verify(ctx, local, raw, *tok)
	if reason := models.TokenReason(err); reason != "" {
		a.refused(reason)
	}
	return err
}
