package authn

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"jwtgate/models"
)

// maxJWKSBytes bounds a JWKS document; a real one is a few KiB.
const maxJWKSBytes = 1 << 20

func cmpTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

// jwksKeys is one issuer's JWKS, fetched and refreshed by keyfunc/jwkset.
//
// jwkset refreshes on RefreshInterval and, through its rate limiter, when a
// kid is not found; we add what it lacks: concurrent lookups of unknown kids
// share one refetch (singleflight), readiness (has a fetch ever worked?),
// and 503 rather than 401 while the JWKS cannot be fetched.
type jwksKeys struct {
	url     string
	kf      keyfunc.Keyfunc
	store   *trackedStore
	timeout time.Duration
	log     *slog.Logger

	refetches singleflight.Group
	// lastErr is the error of the latest fetch; nil after a success.
	lastErr atomic.Pointer[error]
}

func newJWKSKeys(ctx context.Context, ic IssuerConfig, cfg LocalConfig, hc *http.Client, log *slog.Logger) (*jwksKeys, error) {
	j := &jwksKeys{url: ic.JWKSURL, timeout: cfg.Timeout, log: log}
	j.store = &trackedStore{MemoryJWKSet: jwkset.NewMemoryStorage(), onReplace: j.fetched}
	storage, err := jwkset.NewStorageFromHTTP(ic.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    hc,
		Ctx:                       ctx, // ends the refresh goroutine on Close
		HTTPTimeout:               cfg.Timeout,
		NoErrorReturnFirstHTTPReq: true, // start anyway; Ready says it is missing
		RefreshErrorHandler:       j.failed,
		RefreshInterval:           cfg.RefreshInterval,
		Storage:                   j.store,
	})
	if err != nil {
		return nil, fmt.Errorf("%s.jwks_url: %w", ic.Setting, err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{ic.JWKSURL: storage},
		// At most one refetch per interval for unknown kids. No extra wait
		// bound: the caller's deadline (cfg.Timeout) makes the limiter refuse
		// at once when the next slot is further away, and jwkset reuses that
		// context for the fetch itself.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.RefetchInterval), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("%s.jwks_url: %w", ic.Setting, err)
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx:     ctx,
		Storage: client,
		// Keys published for encryption ("use": "enc") never verify tokens.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		return nil, fmt.Errorf("%s.jwks_url: %w", ic.Setting, err)
	}
	j.kf = kf
	return j, nil
}

// fetched is called by jwkset after every successful fetch.
func (j *jwksKeys) fetched(first bool, keys []jwkset.JWK) {
	if prev := j.lastErr.Swap(nil); first || prev != nil {
		j.log.Info("JWKS fetched", "url", j.url, "keys", len(keys))
		return
	}
	j.log.Debug("JWKS refreshed", "url", j.url, "keys", len(keys))
}

// failed is called by jwkset after every failed fetch; the keys stay.
func (j *jwksKeys) failed(_ context.Context, err error) {
	j.lastErr.Store(&err)
	if j.store.isLoaded() {
		j.log.Warn("JWKS refresh failed; keeping the last good keys", "url", j.url, "err", err)
	} else {
		j.log.Error("JWKS fetch failed; tokens of this issuer get 503 until it succeeds", "url", j.url, "err", err)
	}
}

func (j *jwksKeys) ready() error {
	if j.store.isLoaded() {
		return nil
	}
	if p := j.lastErr.Load(); p != nil {
		return fmt.Errorf("JWKS %s not fetched yet: %w", j.url, *p)
	}
	return fmt.Errorf("JWKS %s not fetched yet", j.url)
}

// unavailable returns why the JWKS cannot be trusted to be complete right
// now (never fetched, or the latest fetch failed), or nil.
func (j *jwksKeys) unavailable() error {
	if err := j.ready(); err != nil {
		return err
	}
	if p := j.lastErr.Load(); p != nil {
		return fmt.Errorf("JWKS %s unreachable: %w", j.url, *p)
	}
	return nil
}

func (j *jwksKeys) key(ctx context.Context, t *jwt.Token, alg string) (any, error) {
	kid, hasKid := t.Header["kid"].(string)
	if !hasKid && t.Header["kid"] != nil {
		return nil, &models.TokenError{Reason: models.ReasonMalformed, Detail: "kid is not a string"}
	}
	if !hasKid {
		// Stock SimpleJWT puts no kid in its tokens: try every key that fits.
		if !j.store.isLoaded() {
			j.refetch(ctx, "")
		}
		if k := j.fitting(alg); k != nil {
			return k, nil
		}
		if err := j.ready(); err != nil {
			return nil, fmt.Errorf("%w: %w", err, models.ErrAuthUnavailable)
		}
		return nil, &models.TokenError{Reason: models.ReasonAlgKeyMismatch, Detail: "no key in the JWKS fits alg " + alg}
	}
	if !j.store.has(kid) {
		j.refetch(ctx, kid)
		if !j.store.has(kid) {
			return nil, j.missing("kid not in the JWKS")
		}
	}
	k, err := j.kf.KeyfuncCtx(ctx)(t) // checks the JWK's alg and use
	if err != nil {
		return nil, &models.TokenError{Reason: models.ReasonAlgKeyMismatch, Detail: "the JWK refuses this token's alg or use"}
	}
	if !asymmetric(k) || !keyFits(alg, k) {
		return nil, &models.TokenError{Reason: models.ReasonAlgKeyMismatch, Detail: "the JWK's type does not fit alg " + alg}
	}
	return k, nil
}

// missing is the refusal for a key not found: 503 while the JWKS cannot be
// fetched (the key may well exist), otherwise a definitive 401.
func (j *jwksKeys) missing(detail string) error {
	if err := j.unavailable(); err != nil {
		return fmt.Errorf("%w: %w", err, models.ErrAuthUnavailable)
	}
	return &models.TokenError{Reason: models.ReasonUnknownKey, Detail: detail}
}

// fitting returns the JWKS keys that may verify alg (nil if none), as a
// jwt.VerificationKeySet when there are several.
func (j *jwksKeys) fitting(alg string) any {
	snap := j.store.snapshot()
	var fit []jwt.VerificationKey
	for _, e := range snap {
		if (e.alg == "" || e.alg == alg) && (e.use == "" || e.use == jwkset.UseSig) && asymmetric(e.key) && keyFits(alg, e.key) {
			fit = append(fit, e.key)
		}
	}
	switch len(fit) {
	case 0:
		return nil
	case 1:
		return fit[0]
	}
	return jwt.VerificationKeySet{Keys: fit}
}

// signingKeys counts the keys of the latest fetch that may verify tokens
// (not published for encryption only).
func (j *jwksKeys) signingKeys() int {
	n := 0
	for _, e := range j.store.snapshot() {
		if (e.use == "" || e.use == jwkset.UseSig) && asymmetric(e.key) {
			n++
		}
	}
	return n
}

// refetch asks jwkset for kid, which refetches the JWKS if its rate limiter
// allows. Concurrent callers share one refetch, whatever kid they want, and
// each looks its own kid up afterwards.
func (j *jwksKeys) refetch(ctx context.Context, kid string) {
	_, _, _ = j.refetches.Do("refetch", func() (any, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.timeout)
		defer cancel()
		_, err := j.kf.Storage().KeyRead(cctx, kid)
		return nil, err
	})
}

// trackedStore is jwkset's in-memory storage, told when a fetch replaced the
// keys, so we know whether a fetch ever worked and can list keys cheaply.
type trackedStore struct {
	*jwkset.MemoryJWKSet
	onReplace func(first bool, keys []jwkset.JWK)

	mu     sync.RWMutex
	loaded bool
	gen    int // successful fetches so far
	kids   map[string]bool
	keys   []jwkEntry
}

type jwkEntry struct {
	alg string
	use jwkset.USE
	key any
}

// KeyReplaceAll is what jwkset calls after each successful fetch.
func (s *trackedStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := s.MemoryJWKSet.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	kids := make(map[string]bool, len(given))
	keys := make([]jwkEntry, 0, len(given))
	for _, k := range given {
		m := k.Marshal()
		kids[m.KID] = true
		key := k.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public()
		}
		keys = append(keys, jwkEntry{alg: m.ALG.String(), use: m.USE, key: key})
	}
	s.mu.Lock()
	first := !s.loaded
	s.kids, s.keys, s.loaded = kids, keys, true
	s.gen++
	s.mu.Unlock()
	s.onReplace(first, given)
	return nil
}

func (s *trackedStore) has(kid string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kids[kid]
}

func (s *trackedStore) snapshot() []jwkEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys
}

func (s *trackedStore) generation() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

func (s *trackedStore) isLoaded() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.loaded
}

// limitBody caps what is read of a JWKS answer.
type limitBody struct{ next http.RoundTripper }

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = http.MaxBytesReader(nil, resp.Body, maxJWKSBytes)
	return resp, nil
}
