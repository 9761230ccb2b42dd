package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"jwtgate/models"
)

// Introspecter asks an OAuth provider about a token (RFC 7662): its claims
// when active, an error matching models.ErrTokenInvalid when not, or one
// matching models.ErrAuthUnavailable when the provider cannot say.
type Introspecter interface {
	Introspect(ctx context.Context, raw string) (map[string]any, error)
}

// IntrospectionConfig is how verify: introspect reaches the provider.
type IntrospectionConfig struct {
	Endpoint, ClientID, ClientSecret string
	// Failures consecutive failed calls open the breaker for CoolDown; 0: no breaker.
	Failures int
	CoolDown time.Duration
}

// Introspection is the RFC 7662 client of verify: introspect, with a
// circuit breaker. It is safe for concurrent use.
type Introspection struct {
	cfg IntrospectionConfig
	hc  *http.Client
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

// NewIntrospection builds the client.
func NewIntrospection(cfg IntrospectionConfig, hc *http.Client, log *slog.Logger, now func() time.Time) *Introspection {
	return &Introspection{cfg: cfg, hc: hc, log: log, now: now}
}

// maxIntrospectionBytes bounds an introspection answer.
const maxIntrospectionBytes = 1 << 20

// errIntrospectionOpen is returned while the breaker is open.
var errIntrospectionOpen = fmt.Errorf("introspection: circuit open: %w", models.ErrAuthUnavailable)

// Introspect implements Introspecter.
func (in *Introspection) Introspect(ctx context.Context, raw string) (map[string]any, error) {
	if !in.allow() {
		return nil, errIntrospectionOpen
	}
	claims, err := in.call(ctx, raw)
	in.record(err == nil || errors.Is(err, models.ErrTokenInvalid))
	return claims, err
}

func (in *Introspection) call(ctx context.Context, raw string) (map[string]any, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: the credentials are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	resp, err := in.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspection: %w: %w", models.ErrAuthUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		// The provider cannot introspect this kind of token (a JWT, for
		// some): it does not vouch for it.
		return nil, &models.TokenError{Reason: models.ReasonRejected, Detail: "the provider cannot introspect this token"}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		in.log.ErrorContext(ctx, "the provider refused the gateway's introspection credentials (auth.introspection.client_id / client_secret)", "status", resp.StatusCode)
		return nil, fmt.Errorf("introspection: status %d: %w", resp.StatusCode, models.ErrAuthUnavailable)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("introspection: status %d: %w", resp.StatusCode, models.ErrAuthUnavailable)
	}
	var claims map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxIntrospectionBytes)).Decode(&claims); err != nil {
		return nil, fmt.Errorf("introspection: not a JSON object: %w: %w", models.ErrAuthUnavailable, err)
	}
	if claims["active"] != true {
		return nil, &models.TokenError{Reason: models.ReasonRejected, Detail: "the provider says the token is not active"}
	}
	return claims, nil
}

func (in *Introspection) allow() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cfg.Failures <= 0 || !in.now().Before(in.openUntil)
}

func (in *Introspection) record(ok bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if ok {
		in.failures = 0
		return
	}
	in.failures++
	if in.cfg.Failures > 0 && in.failures >= in.cfg.Failures {
		in.openUntil = in.now().Add(in.cfg.CoolDown)
		in.failures = 0
	}
}

// introspected is Token for verify: introspect: the verdict cache, the
// negative cache, one coalesced call per token and the calls-home budget,
// as for remote verdicts; the token may be opaque, and its claims are the
// provider's answer. A verdict never outlives the answer's exp.
func (a *Authenticator) introspected(ctx context.Context, raw string) (models.Token, error) {
	if len(raw) > models.MaxTokenBytes {
		a.refused(models.ReasonTooLarge)
		return models.Token{}, &models.TokenError{Reason: models.ReasonTooLarge, Detail: "token too long"}
	}
	key := TokenKey(raw)
	now := a.now()
	if v, ok := a.tokens.Get(key); ok {
		if a.isRevoked(v.key, now) {
			return models.Token{}, errRevoked
		}
		if now.UnixNano() < v.expires {
			a.obs.CacheHit()
			return v.token(), nil
		}
		a.tokens.Remove(key)
	}
	if until, ok := a.rejected.Get(key); ok && now.Before(until) {
		a.obs.NegativeHit()
		a.refused(models.ReasonRejected)
		return models.Token{}, &models.TokenError{Reason: models.ReasonRejected, Detail: "rejected by the provider (cached)"}
	}
	a.obs.CacheMiss()
	ch := a.tokenCalls.DoChan(string(key[:]), func() (any, error) {
		if a.st().cfg.CallsHome != nil {
			if ok, wait := a.st().cfg.CallsHome.Take(ctx); !ok {
				return nil, &ThrottledError{RetryAfter: wait}
			}
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.st().cfg.CallTimeout)
		defer cancel()
		claims, err := a.st().cfg.Introspect.Introspect(cctx, raw)
		if err == nil {
			var tok models.Token
			if tok, err = a.introspectedToken(claims, key); err == nil {
				expires := a.now().Add(a.st().cfg.TTL)
				if tok.Expires.Before(expires) {
					expires = tok.Expires
				}
				if a.tokens.Add(key, newVerdict(tok, expires)) {
					a.obs.Evicted()
				}
				return tok, nil
			}
		}
		if errors.Is(err, models.ErrTokenInvalid) && a.st().cfg.NegativeTTL > 0 {
			a.rejected.Add(key, a.now().Add(a.st().cfg.NegativeTTL))
		}
		return nil, err
	})
	select {
	case res := <-ch:
		if res.Shared {
			a.obs.Coalesced()
		}
		if res.Err != nil {
			if reason := models.TokenReason(res.Err); reason != "" {
				a.refused(reason)
			}
			return models.Token{}, res.Err
		}
		return res.Val.(models.Token), nil
	case <-ctx.Done():
		return models.Token{}, fmt.Errorf("introspect: %w", ctx.Err())
	}
}

// introspectedToken is the token an active introspection answer describes.
func (a *Authenticator) introspectedToken(claims map[string]any, key [32]byte) (models.Token, error) {
	id, ok := models.IDString(claims[a.st().cfg.UserIDClaim])
	if !ok {
		return models.Token{}, &models.TokenError{Reason: models.ReasonRejected, Detail: "the introspection answer has no " + a.st().cfg.UserIDClaim}
	}
	now := a.now()
	exp := now.Add(a.st().cfg.TTL)
	if e, ok := claims["exp"].(float64); ok {
		exp = time.Unix(int64(e), 0)
	}
	if !now.Before(exp.Add(a.st().cfg.Leeway)) {
		return models.Token{}, &models.TokenError{Reason: models.ReasonRejected, Detail: "the introspection answer says the token expired"}
	}
	iss, _ := claims["iss"].(string)
	return models.Token{UserID: id, Issuer: iss, Expires: exp, Claims: claims, Key: key}, nil
}
