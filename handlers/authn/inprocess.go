package authn

import (
	"context"
	"errors"

	"jwtgate/models"
)

// verifyAndStore asks the verifier about tok and stores its answer: the
// verdict, or the refusal (negative cache) that replaces any stale one.
func (a *Authenticator) verifyAndStore(ctx context.Context, raw string, key [32]byte, tok models.Token) error {
	asked := a.now() // the verdict counts from the question, not the answer: a slow answer buys no extra ttl
	err := verify(ctx, a.st().verifier, raw, tok)
	switch {
	case err == nil:
		expires := a.verdictExpiry(tok, asked)
		// The verdict keeps no claims: their map was half of the
		// cache's memory, and only allow rules that read claims need
		// them, decoded again from the request's token (Principal.Claims).
		if a.tokens.Add(key, newVerdict(tok, expires)) {
			a.obs.Evicted()
		}
		a.share(ctx, key, tok, expires)
	case errors.Is(err, models.ErrTokenInvalid):
		a.tokens.Remove(key) // a stale verdict must not outlive a refusal
		a.unshare(ctx, key)
		if a.st().cfg.NegativeTTL > 0 {
			a.rejected.Add(key, a.now().Add(a.st().cfg.NegativeTTL))
		}
	}
	return err
}

// inProcess says the verifier is the local one (verify: local) and no
// budget bounds calls home: a new token is then checked on the request's
// own goroutine. Coalescing buys nothing for a check that is CPU only
// (a JWKS refetch is shared and detached inside the key set), and the call
// a coalesced check would cost (a goroutine whose stack grows again for
// every token, a channel, a timer for the call's deadline) was a tenth of
// a new HS256 token's CPU (BenchmarkPathLocalNewToken's profile).
func (a *Authenticator) inProcess() bool {
	_, local := a.st().verifier.(*Local)
	return local && a.st().cfg.CallsHome == nil
}

// verifyInProcess is Token's miss path for an in-process verifier: the
// same verdict, refusal and stale-verdict handling as a coalesced call.
func (a *Authenticator) verifyInProcess(ctx context.Context, raw string, key [32]byte, tok models.Token, stale *verdict) (models.Token, error) {
	err := a.verifyAndStore(ctx, raw, key, tok)
	if err == nil {
		return tok, nil
	}
	if stale != nil && errors.Is(err, models.ErrAuthUnavailable) {
		a.obs.StaleServed()
		return stale.token(), nil
	}
	if reason := models.TokenReason(err); reason != "" {
		a.refused(reason)
	}
	return models.Token{}, err
}
