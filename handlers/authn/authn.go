// Package authn decides who is calling: it checks a bearer token (pre-checks,
// then the verify cache or one coalesced call home) and resolves the caller's
// mirrored user (LRU, database, or a fetch from the auth service).
package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"jwtgate/models"
)

// Verifier says whether a token that passed the pre-checks is genuine:
// nil, an error matching models.ErrTokenInvalid, or one matching
// models.ErrAuthUnavailable.
type Verifier interface {
	Verify(ctx context.Context, raw string) error
}

// UserFetcher fetches a user's record from the auth service with the
// caller's token.
type UserFetcher interface {
	FetchUser(ctx context.Context, token, id string, now time.Time) (models.User, error)
}

// UserStore is the part of the user mirror authn needs.
type UserStore interface {
	UserByKey(ctx context.Context, k models.UserKey) (models.User, error)
	UpsertUser(ctx context.Context, u models.User) error
	SetActiveByKey(ctx context.Context, k models.UserKey, active bool) error
	// SetTokensValidAfter sets a user's cutoff (see models.User.TokensValidAfter).
	SetTokensValidAfter(ctx context.Context, k models.UserKey, t time.Time) error
}

// RevocationStore keeps logged-out tokens until they expire (the mirror
// database), so a restart or a replica started later still refuses them.
type RevocationStore interface {
	RevokeToken(ctx context.Context, key [32]byte, exp time.Time) error
	RevokedTokens(ctx context.Context, now time.Time) (map[[32]byte]time.Time, error)
}

// Principal is an authenticated caller.
type Principal struct {
	// Token is the caller's token. Its Claims are nil when the verdict came
	// from the cache, which does not keep them: use Principal.Claims.
	Token models.Token
	User  *models.User
	// Attrs is the user as access rules see it; shared, read-only. User
	// and Attrs are one cached record's: the same pointers until the
	// record is refreshed, so a caller may memoise per-user data by User.
	Attrs map[string]any
	// Issuer is the iss of the issuer the user belongs to: the token's,
	// checked by the local verifier, when several issuers are trusted;
	// otherwise the one configured issuer, or "" when none is.
	Issuer string

	raw string // the request's token, to decode the claims on demand
}

// Claims returns the token's claims, decoding them from the request's
// token when the verdict came from the cache.
func (p *Principal) Claims() map[string]any {
	if p.Token.Claims == nil && p.raw != "" {
		if c, err := models.TokenClaims(p.raw); err == nil {
			p.Token.Claims = c
		}
	}
	return p.Token.Claims
}

// Config is what the authenticator needs from settings.
type Config struct {
	UserIDClaim string
	Leeway      time.Duration
	CacheSize   int
	TTL         time.Duration
	NegativeTTL time.Duration
	// StaleGrace lets a positive verdict be served past TTL for at most
	// this long while the auth service is unavailable; 0 is off.
	StaleGrace time.Duration
	// RevokeOnLogout makes Revoke refuse a logged-out token until it
	// expires; off, Revoke only evicts it.
	RevokeOnLogout bool
	UserCacheSz    int
	RefreshAfter   time.Duration
	// CallTimeout bounds a shared call home, whoever is waiting for it.
	CallTimeout time.Duration
	// Issuers lists the trusted issuers' iss values when there are several
	// (verify: local or hybrid with two or more auth.local.issuers): users
	// are then told apart by issuer. Empty: one user namespace.
	Issuers []string
	// Issuer is the iss of the auth service's users: with several issuers,
	// the one whose user_endpoint is true; otherwise the configured issuer
	// ("" when none is). It is what user.issuer and X-User-Issuer say.
	Issuer string
	// CallsHome, when set, is asked by the request that starts a call to
	// the verifier, so one client cannot make the gateway flood the auth
	// service with forged tokens; nil: unbounded. Tokens with a verdict in
	// the cache, negative-cache hits, pre-check failures and requests
	// waiting on a call in flight never ask.
	CallsHome CallBudget
	// Introspect, when set, verifies every new token by asking the
	// provider's introspection endpoint (verify: introspect).
	Introspect Introspecter
	// Users, when set, builds users from the verified token's claims
	// (users.source: claims) instead of fetching them.
	Users *models.UserMapping
	// Shared asks and feeds the shared verdict cache (Deps.Shared) when
	// there is one: verify remote or hybrid with auth.cache.redis_url set.
	// Local verification is cheaper than a Redis round trip and never
	// uses it.
	Shared bool
}

// CallBudget bounds the calls home a client may cause. The client is the
// one ctx belongs to (the HTTP layer puts it there).
type CallBudget interface {
	// Take spends one call home; when the client's budget is spent it
	// returns false and how long until the next call home is allowed.
	Take(ctx context.Context) (ok bool, retryAfter time.Duration)
}

// ConfigFrom takes the authenticator's settings from settings.yaml.
func ConfigFrom(s models.Settings) Config {
	return Config{
		UserIDClaim:    s.Auth.UserIDClaim,
		Leeway:         s.Auth.Local.Leeway,
		CacheSize:      s.Auth.Cache.Size,
		TTL:            s.Auth.Cache.TTL,
		NegativeTTL:    s.Auth.Cache.NegativeTTL,
		StaleGrace:     s.Auth.Cache.StaleGrace,
		RevokeOnLogout: s.Auth.RevokeOnLogout,
		UserCacheSz:    s.Users.CacheSize,
		RefreshAfter:   s.Users.RefreshAfter,
		CallTimeout:    s.AuthService.Timeout,
		Issuers:        s.UserIssuers(),
		Issuer:         s.UserEndpointIssuer(),
		Shared:         s.Auth.Cache.RedisURL != "" && (s.Auth.Verify == models.VerifyRemote || s.Auth.Verify == models.VerifyHybrid),
	}
}

// staleRetry is how soon a stale record served during an outage is re-fetched.
const staleRetry = 30 * time.Second

type cachedUser struct {
	user    models.User
	attrs   map[string]any
	checkAt time.Time // re-fetch from the auth service after this
	cutoff  int64     // user.TokensValidAfter in Unix seconds; 0: none
}

// Authenticator checks tokens and resolves users. It is safe for concurrent
// use. It is a view: the caches, revocations and calls in flight are
// shared by every view Reconfigured derives; the settings are the view's.
type Authenticator struct {
	*shared
	state *authState
}

// shared is what every view of an Authenticator shares.
type shared struct {
	fetcher UserFetcher
	store   UserStore
	log     *slog.Logger
	now     func() time.Time

	tokens   *verdictCache
	rejected *lru.Cache[[32]byte, time.Time]
	revoked  *revokedSet // by models.Token.Key; logged out: refused until exp, never evicted early
	users    *userCache

	tokenCalls singleflight.Group
	userCalls  singleflight.Group

	obs   Observer
	peers Peers // nil: no other replicas
	// revocations persists logged-out tokens; nil: memory only.
	revocations RevocationStore

	ahead aheadState // background revalidations (refresh-ahead)

	second *secondLevel // the shared verdict cache; nil: none
}

// authState is the settings-dependent part of a view, immutable.
type authState struct {
	cfg      Config
	verifier Verifier
	// local, when set, checks every token in-process on every request, even
	// when the verifier's verdict is cached (verify: hybrid: the remote
	// verdict is reused for cache.ttl, the local check never is).
	local Verifier
}

// st returns the view's settings-dependent state.
func (a *Authenticator) st() *authState { return a.state }

// Reconfigured returns a view of a with new settings (a reload): cfg and
// the verifiers (as Deps.Verifier and Deps.Local). The views share every
// cache: cached users and revocations always stay; cached verdicts and
// refusals are dropped when dropVerdicts is set (the verification settings
// changed in a way that could change a verdict). The caches are resized to
// cfg's sizes. Requests served by a keep its settings.
func (a *Authenticator) Reconfigured(cfg Config, verifier, local Verifier, dropVerdicts bool) *Authenticator {
	a.tokens.Resize(cfg.CacheSize)
	a.users.Resize(cfg.UserCacheSz)
	if dropVerdicts {
		a.tokens.Purge()
		a.rejected.Purge()
	}
	return &Authenticator{shared: a.shared, state: &authState{cfg: cfg, verifier: verifier, local: local}}
}

// Deps are what an Authenticator works with.
type Deps struct {
	// Verifier says whether a new token is genuine (the auth service, or
	// the local verifier for verify: local).
	Verifier Verifier
	// Local, when set, is the every-request local check of verify: hybrid.
	Local Verifier
	// Fetcher fetches users from the auth service; Store is the mirror.
	Fetcher UserFetcher
	Store   UserStore
	// Observer is told what happened (for metrics); nil means nobody.
	Observer Observer
	// Peers tells the other replicas what this one revoked or saw
	// deactivated; nil without other replicas.
	Peers Peers
	// Revocations persists logged-out tokens (the mirror database); nil
	// keeps them in memory only.
	Revocations RevocationStore
	// Shared is the shared verdict cache (Redis); nil: none.
	Shared *Shared
	Log    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Peers carries cache invalidations to the other replicas sharing the
// database. Only hashes and user ids travel, never tokens.
type Peers interface {
	// TokenRevoked says a token was logged out: evict it, and refuse it
	// until until (zero: evict only).
	TokenRevoked(key [32]byte, until time.Time)
	// UserChanged says a user was deactivated or deleted: evict it.
	UserChanged(k models.UserKey)
}

// Observer receives authentication events (metrics implements it). Its
// methods must be safe for concurrent use and quick: they run on the
// request path.
type Observer interface {
	CacheHit()
	CacheMiss()
	NegativeHit()
	Coalesced()
	// Refused counts a refusal by reason (models.Reason*).
	Refused(reason string)
	// UserFetched counts a user fetch by outcome.
	UserFetched(outcome string)
	// MirrorWritten counts a write of the user mirror.
	MirrorWritten(err error)
	// Evicted is called when a new verdict pushes the oldest out of a full cache.
	Evicted()
	// StaleServed is called when a verdict is served past its TTL under
	// auth.cache.stale_grace because the auth service is unavailable.
	StaleServed()
	// SharedCacheHit counts a verdict taken from the shared cache.
	SharedCacheHit()
	// SharedCacheMiss counts a lookup in the shared cache that gave no
	// usable verdict, by reason (SharedMissReasons).
	SharedCacheMiss(reason string)
	// SharedCacheWrite counts a verdict written to the shared cache.
	SharedCacheWrite()
}

type nopObserver struct{}

func (nopObserver) CacheHit() {}

func (nopObserver) CacheMiss() {}

func (nopObserver) NegativeHit() {}

func (nopObserver) Coalesced() {}

func (nopObserver) Refused(string) {}

func (nopObserver) UserFetched(string) {}

func (nopObserver) MirrorWritten(error) {}

func (nopObserver) Evicted() {}

func (nopObserver) StaleServed() {}

func (nopObserver) SharedCacheHit() {}

func (nopObserver) SharedCacheMiss(string) {}

func (nopObserver) SharedCacheWrite() {}

// New builds an authenticator.
func New(cfg Config, d Deps) (*Authenticator, error) {
	tokens, err := newVerdictCache(cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("auth.cache.size: %w", err)
	}
	rejected, err := lru.New[[32]byte, time.Time](max(cfg.CacheSize/10, 128))
	if err != nil {
		return nil, fmt.Errorf("auth.cache.size: %w", err)
	}
	users, err := newUserCache(cfg.UserCacheSz)
	if err != nil {
		return nil, fmt.Errorf("users.cache_size: %w", err)
	}
	a := &Authenticator{shared: &shared{
		fetcher: d.Fetcher, store: d.Store, log: d.Log, now: d.Now,
		tokens: tokens, rejected: rejected, revoked: newRevokedSet(), users: users,
		obs: d.Observer, peers: d.Peers, revocations: d.Revocations,
	}, state: &authState{cfg: cfg, verifier: d.Verifier, local: d.Local}}
	if a.obs == nil {
		a.obs = nopObserver{}
	}
	if d.Shared != nil {
		if len(d.Shared.Secret) < models.RedisSecretMinBytes {
			return nil, fmt.Errorf("auth.cache.redis_secret: must be at least %d bytes, got %d", models.RedisSecretMinBytes, len(d.Shared.Secret))
		}
		a.second = &secondLevel{store: d.Shared.Store, macKey: sharedMACKey(d.Shared.Secret)}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Authenticate checks raw and returns the caller. Errors match
// models.ErrTokenInvalid, ErrUserInactive, ErrAuthUnavailable,
// ErrUserRejected, ErrPermissionDenied or ErrNoUserSource.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Principal, error) {
	// A request's context is never a revalidation's: those only go
	// through Token.
	now := a.now()
	p := Principal{raw: raw}
	tok := &p.Token
	hit, err := a.token(ctx, raw, now, false, tok)
	if err != nil {
		return Principal{}, err
	}
	if !hit { // the check may have waited on a call home
		now = a.now()
	}
	key, iss, err := a.userKey(tok)
	if err != nil {
		reason := models.TokenReason(err)
		if reason == "" {
			reason = ReasonNoUserSource
		}
		a.refused(reason)
		return Principal{}, err
	}
	var cu *cachedUser
	if a.st().cfg.Users != nil {
		cu, err = a.claimsUser(ctx, raw, *tok, key)
	} else {
		cu, err = a.user(ctx, raw, key, now)
	}
	if err != nil {
		switch {
		case errors.Is(err, models.ErrUserInactive):
			a.refused(models.ReasonInactive)
		case errors.Is(err, models.ErrUserRejected):
			a.refused(models.ReasonUserNotFound)
		case errors.Is(err, models.ErrTokenInvalid):
			a.refused(models.ReasonRejected)
		}
		return Principal{}, err
	}
	if !cu.user.IsActive {
		a.refused(models.ReasonInactive)
		return Principal{}, fmt.Errorf("user %q: %w", key, models.ErrUserInactive)
	}
	if cu.cutoff != 0 && tok.IssuedAt < cu.cutoff { // no iat is 0: refused too
		a.refused(models.ReasonRevoked)
		return Principal{}, errUserRevoked
	}
	p.User, p.Attrs, p.Issuer = &cu.user, cu.attrs, iss
	return p, nil
}

// CacheLen returns the number of cached positive verdicts.
func (a *Authenticator) CacheLen() int { return a.tokens.Len() }

func (a *Authenticator) refused(reason string) { a.obs.Refused(reason) }

func (a *Authenticator) fetched(outcome string) { a.obs.UserFetched(outcome) }
