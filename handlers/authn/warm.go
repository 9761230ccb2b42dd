package authn

import (
	"context"
	"errors"
	"sync"
	"time"

	"jwtgate/models"
)

// Warm caches an access token the auth service has just issued through the
// gateway (the access of a login or refresh answer) as verified, so its
// first API call makes no call home. The answer came from the private auth
// service itself, so the token is genuine; it still passes the same
// pre-checks as a request's token (size, canonical spelling, shape, exp,
// token_type, user id), is never cached past min(now+ttl, exp), is refused
// when its revocation key was logged out, and is not cached when the auth
// service refused this very text before (negative cache). With verify:
// local the local verifier checks it first (no call home either way);
// with hybrid the local check still runs on every request, as for any
// cached verdict. It reports whether the token was cached.
func (a *Authenticator) Warm(ctx context.Context, raw string) bool {
	if len(raw) > models.MaxTokenBytes {
		return false
	}
	now := a.now()
	tok, err := models.PrecheckToken(raw, a.st().cfg.UserIDClaim, a.st().cfg.Leeway, now)
	if err != nil {
		return false
	}
	key := TokenKey(raw)
	if a.isRevoked(tok.Key, now) {
		return false
	}
	if until, ok := a.rejected.Get(key); ok && now.Before(until) {
		return false
	}
	if _, ok := a.st().verifier.(*Local); ok {
		if err := verify(ctx, a.st().verifier, raw, tok); err != nil {
			return false
		}
	}
	expires := a.verdictExpiry(tok, now)
	if a.tokens.Add(key, newVerdict(tok, expires)) {
		a.obs.Evicted()
	}
	a.share(ctx, key, tok, expires) // the other replicas skip the first call home too
	return true
}

// verdictExpiry is when a positive verdict about tok, given at now, stops
// being served: after cache.ttl, and never past the token's exp.
func (a *Authenticator) verdictExpiry(tok models.Token, now time.Time) time.Time {
	expires := now.Add(a.st().cfg.TTL)
	if tok.Expires.Before(expires) {
		expires = tok.Expires
	}
	return expires
}

// aheadShare is the part of cache.ttl at the end of a verdict's life in
// which a hit starts a background revalidation (refresh-ahead).
const aheadShare = 5 // the last 1/5 = 20%

// revalidateKey marks the context of a background revalidation: Token
// skips the fresh verdict and asks the verifier (coalesced with any call
// in flight for the token).
type revalidateKey struct{}

// aheadState tracks the background revalidations: at most one per token
// at a time, and after a failure (auth service unavailable) not again
// before a backoff, so an outage does not turn every hit into a call.
type aheadState struct {
	mu   sync.Mutex
	next map[[32]byte]int64 // token key → no new revalidation before (Unix ns)
	// sweepAt is the size of next at which entries whose time has passed
	// (backoffs of tokens no longer used) are dropped.
	sweepAt int
	// started and done, when set (tests), are called when a revalidation
	// is started (on the request's goroutine) and when it has finished.
	started, done func()
}

// refreshAhead starts a background revalidation of the verdict v (key) when
// now is in the last 20% of its TTL and a new verdict would live longer
// (it never goes past exp). The request is served from v without waiting.
// ctx is a request's, never a revalidation's (Token does not serve those
// from the cache).
func (a *Authenticator) refreshAhead(ctx context.Context, raw string, key [32]byte, v *verdict, n int64) {
	ttl := int64(a.st().cfg.TTL)
	if ttl <= 0 || v.expires >= v.exp || n < v.expires-ttl/aheadShare {
		return
	}
	st := &a.ahead
	st.mu.Lock()
	if st.next == nil {
		st.next = map[[32]byte]int64{}
	}
	if next, ok := st.next[key]; ok && n < next {
		st.mu.Unlock()
		return
	}
	st.next[key] = n + int64(a.st().cfg.CallTimeout) + ttl // held while in flight
	if len(st.next) > st.sweepAt {
		for k, t := range st.next {
			if t <= n {
				delete(st.next, k)
			}
		}
		st.sweepAt = max(2*len(st.next), 1024)
	}
	started := st.started
	st.mu.Unlock()
	if started != nil {
		started()
	}
	bg := context.WithValue(context.WithoutCancel(ctx), revalidateKey{}, true)
	go a.revalidate(bg, raw, key)
}

// revalidate asks the verifier about a cached token again (through Token,
// so it is coalesced with any call in flight for it and stores the new
// verdict, or evicts it on a refusal).
func (a *Authenticator) revalidate(ctx context.Context, raw string, key [32]byte) {
	_, err := a.Token(ctx, raw)
	st := &a.ahead
	st.mu.Lock()
	if err != nil && errors.Is(err, models.ErrAuthUnavailable) {
		st.next[key] = a.now().UnixNano() + int64(a.st().cfg.TTL)/(4*aheadShare) // retry after 5% of ttl
	} else {
		delete(st.next, key)
	}
	done := st.done
	st.mu.Unlock()
	if done != nil {
		done()
	}
}
