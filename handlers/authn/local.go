package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
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

// minHMACBytes is the shortest HMAC secret accepted: RFC 7518 §3.2 asks for
// a key at least as long as the hash output.
const minHMACBytes = 32

// LocalConfig is what the local verifier needs from settings.
type LocalConfig struct {
	// Issuers are the trusted key sets. With one entry whose Issuer is
	// empty (auth.local without issuers), iss is not checked.
	Issuers    []IssuerConfig
	Algorithms []string
	Leeway     time.Duration
	// RefreshInterval is how often each JWKS is fetched again.
	RefreshInterval time.Duration
	// RefetchInterval bounds the refetches an unknown kid causes, per JWKS.
	RefetchInterval time.Duration
	// Timeout bounds one JWKS fetch.
	Timeout time.Duration
	// HTTPClient fetches JWKS documents; nil means a pooled default.
	HTTPClient *http.Client
}

// IssuerConfig is one trusted issuer: its keys (a JWKS URL or key entries)
// and the audience its tokens must carry.
type IssuerConfig struct {
	// Setting is the settings key it came from, for error messages.
	Setting  string
	Issuer   string
	JWKSURL  string
	Keys     []string
	Audience string
}

// LocalConfigFrom takes the local verifier's settings from settings.yaml.
func LocalConfigFrom(s models.Settings) LocalConfig {
	l := s.Auth.Local
	cfg := LocalConfig{
		Algorithms:      l.Algorithms,
		Leeway:          l.Leeway,
		RefreshInterval: l.JWKSRefreshInterval,
		RefetchInterval: l.JWKSRefetchInterval,
		Timeout:         s.AuthService.Timeout,
	}
	if len(l.Issuers) == 0 {
		cfg.Issuers = []IssuerConfig{{Setting: "auth.local", Issuer: l.Issuer, JWKSURL: l.JWKSURL, Keys: l.Keys, Audience: l.Audience}}
		return cfg
	}
	for i, is := range l.Issuers {
		cfg.Issuers = append(cfg.Issuers, IssuerConfig{
			Setting: fmt.Sprintf("auth.local.issuers[%d]", i), Issuer: is.Issuer,
			JWKSURL: is.JWKSURL, Keys: is.Keys, Audience: cmpOr(is.Audience, l.Audience),
		})
	}
	return cfg
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Local verifies tokens in-process: signature against the issuer's keys
// (PEM files, HMAC secrets from the environment, or a JWKS kept fresh by
// keyfunc), the algorithm allowlist, the key type, exp/nbf, iss and aud.
// It never calls the auth service. It is safe for concurrent use.
type Local struct {
	// single is the only key set when iss picks nothing (one issuer, no
	// iss check, or one issuer whose iss is checked by its parser).
	single   *keySet
	byIssuer map[string]*keySet
	sets     []*keySet
	algs     []string
	cancel   context.CancelFunc
	// skippedKeys counts JWKS keys skipped as unusable (jwkFilter).
	skippedKeys atomic.Int64
}

// SkippedKeys returns how many distinct JWKS keys were skipped as unusable
// (private key material, an RSA key under 2048 bits, unparseable); each is
// also logged once.
func (l *Local) SkippedKeys() int64 { return l.skippedKeys.Load() }

// keySet is one issuer's keys and the parser that checks its tokens.
type keySet struct {
	setting string
	issuer  string
	parser  *jwt.Parser
	// static maps an allowed alg to the configured keys that fit it: a
	// single key or a jwt.VerificationKeySet. Nil for a JWKS.
	static map[string]any
	jwks   *jwksKeys
}

// NewLocal builds the local verifier: it reads the PEM files, takes HMAC
// secrets from getenv, and fetches every JWKS once. A JWKS that cannot be
// fetched does not fail NewLocal: Ready reports it, tokens needing it get
// models.ErrAuthUnavailable, and it is fetched again on the refresh
// interval (and, rate-limited, when a token arrives). Close stops the
// refreshes.
func NewLocal(ctx context.Context, cfg LocalConfig, getenv func(string) string, log *slog.Logger, now func() time.Time) (*Local, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("auth.local: no issuer configured")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	hc := *cfg.HTTPClient
	hc.Transport = limitBody{next: cmpTransport(hc.Transport)}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Local{byIssuer: map[string]*keySet{}, algs: slices.Clone(cfg.Algorithms), cancel: cancel}
	var errs []error
	for _, ic := range cfg.Issuers {
		opts := []jwt.ParserOption{
			jwt.WithValidMethods(cfg.Algorithms), // the allowlist, before any key is looked up
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(now),
		}
		if ic.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(ic.Issuer))
		}
		if ic.Audience != "" {
			opts = append(opts, jwt.WithAudience(ic.Audience))
		}
		ks := &keySet{setting: ic.Setting, issuer: ic.Issuer, parser: jwt.NewParser(opts...)}
		if ic.JWKSURL != "" {
			jc := hc // this issuer's client: its filter logs with its URL
			jc.Transport = &jwkFilter{next: hc.Transport, url: ic.JWKSURL, log: log, skipped: &l.skippedKeys, logged: map[string]bool{}}
			j, err := newJWKSKeys(bg, ic, cfg, &jc, log)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ks.jwks = j
		} else {
			static, err := loadStatic(ic, cfg.Algorithms, getenv)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ks.static = static
		}
		l.sets = append(l.sets, ks)
		l.byIssuer[ic.Issuer] = ks
	}
	if err := errors.Join(errs...); err != nil {
		cancel()
		return nil, err
	}
	if len(l.sets) == 1 {
		l.single = l.sets[0]
	}
	return l, nil
}

func cmpTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

// Close stops the background JWKS refreshes.
func (l *Local) Close() { l.cancel() }

// Ready returns nil when every key set can verify tokens: static keys
// always can; a JWKS once it has been fetched at least once (a failed
// refresh later keeps the last good keys, so it stays ready).
func (l *Local) Ready() error {
	var errs []error
	for _, ks := range l.sets {
		if ks.jwks == nil {
			continue
		}
		if err := ks.jwks.ready(); err != nil {
			errs = append(errs, fmt.Errorf("%s.jwks_url: %w", ks.setting, err))
		}
	}
	return errors.Join(errs...)
}

// Verify checks raw's signature, algorithm, key type, exp/nbf, iss and aud.
// It returns nil, a *models.TokenError (matching models.ErrTokenInvalid),
// or an error matching models.ErrAuthUnavailable when the issuer's JWKS has
// never been fetched or cannot be fetched to look up an unknown kid.
func (l *Local) Verify(ctx context.Context, raw string) error {
	ks := l.single
	if ks == nil {
		iss, err := peekIssuer(raw)
		if err != nil {
			return err
		}
		if ks = l.byIssuer[iss]; ks == nil {
			return &models.TokenError{Reason: models.ReasonUnknownIssuer, Detail: "iss is not a trusted issuer"}
		}
	}
	var claims jwt.RegisteredClaims
	keyFor := func(t *jwt.Token) (any, error) { return ks.key(ctx, t) }
	tok, err := ks.parser.ParseWithClaims(raw, &claims, keyFor)
	if err == nil {
		return nil
	}
	err = classify(tok, &claims, err, l.algs)
	if ks.jwks != nil && models.TokenReason(err) == models.ReasonBadSignature && tok != nil && tok.Header["kid"] == nil {
		// Stock SimpleJWT tokens carry no kid, so a rotated key does not
		// show as an unknown kid: refetch (rate-limited, shared) and try
		// once more if the key set changed.
		gen := ks.jwks.store.generation()
		ks.jwks.refetch(ctx, "")
		if ks.jwks.store.generation() != gen {
			claims = jwt.RegisteredClaims{}
			if tok, err = ks.parser.ParseWithClaims(raw, &claims, keyFor); err == nil {
				return nil
			}
			err = classify(tok, &claims, err, l.algs)
		}
	}
	return err
}

// peekIssuer reads iss from the claims without verifying anything: it only
// picks which issuer's keys and rules to check the token with.
func peekIssuer(raw string) (string, error) {
	_, rest, _ := strings.Cut(raw, ".")
	payload, _, ok := strings.Cut(rest, ".")
	if !ok {
		return "", &models.TokenError{Reason: models.ReasonMalformed, Detail: "not three segments"}
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", &models.TokenError{Reason: models.ReasonMalformed, Detail: "claims are not base64url"}
	}
	var c struct {
		Iss any `json:"iss"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", &models.TokenError{Reason: models.ReasonMalformed, Detail: "undecodable claims"}
	}
	iss, ok := c.Iss.(string)
	if !ok || iss == "" {
		return "", &models.TokenError{Reason: models.ReasonUnknownIssuer, Detail: "iss missing or not a string"}
	}
	return iss, nil
}

// classify turns golang-jwt's errors into our refusal reasons.
func classify(tok *jwt.Token, claims *jwt.RegisteredClaims, err error, algs []string) error {
	var te *models.TokenError
	if errors.As(err, &te) {
		return te
	}
	if errors.Is(err, models.ErrAuthUnavailable) {
		return fmt.Errorf("local verify: %w", err)
	}
	reason := models.ReasonMalformed
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = models.ReasonAlgNotAllowed // alg unknown to golang-jwt
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = models.ReasonBadSignature
		if tok != nil && tok.Method != nil && !slices.Contains(algs, tok.Method.Alg()) {
			reason = models.ReasonAlgNotAllowed
		}
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = models.ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = models.ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// golang-jwt does not say which claim: exp, iss or aud.
		switch {
		case claims.ExpiresAt == nil:
			reason = models.ReasonNoExpiry
		case claims.Issuer == "":
			reason = models.ReasonWrongIssuer
		default:
			reason = models.ReasonWrongAudience
		}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = models.ReasonWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = models.ReasonWrongAudience
	}
	return &models.TokenError{Reason: reason, Detail: "local verification failed"}
}

// key returns the key(s) to check t with, refusing any whose type does not
// fit t's alg: an HS256 token must never be checked against an RSA public
// key (whose PEM bytes an attacker knows) as an HMAC secret.
func (ks *keySet) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if ks.jwks == nil {
		if k, ok := ks.static[alg]; ok {
			return k, nil
		}
		return nil, &models.TokenError{Reason: models.ReasonAlgKeyMismatch, Detail: "no configured key fits alg " + alg}
	}
	return ks.jwks.key(ctx, t, alg)
}

// keyFits reports whether key may verify alg. Checked for every key,
// whatever its source, on top of golang-jwt's own type assertions.
func keyFits(alg string, key any) bool {
	switch alg {
	case "HS256", "HS384", "HS512":
		k, ok := key.([]byte)
		return ok && len(k) > 0
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N.BitLen() >= minRSABits
	case "ES256", "ES384", "ES512":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		return k.Curve == want
	case "EdDSA":
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}

// loadStatic reads an issuer's key entries and files them under each allowed
// alg they fit.
func loadStatic(ic IssuerConfig, algs []string, getenv func(string) string) (map[string]any, error) {
	var keys []any
	var errs []error
	for i, entry := range ic.Keys {
		setting := fmt.Sprintf("%s.keys[%d]", ic.Setting, i)
		k, err := loadKey(entry, getenv)
		if err == nil {
			err = checkKeyHygiene(k)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", setting, err))
			continue
		}
		if !slices.ContainsFunc(algs, func(a string) bool { return keyFits(a, k) }) {
			errs = append(errs, fmt.Errorf("%s: a %s fits none of auth.local.algorithms %v", setting, keyKind(k), algs))
			continue
		}
		keys = append(keys, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	static := map[string]any{}
	for _, alg := range algs {
		var fit []jwt.VerificationKey
		for _, k := range keys {
			if keyFits(alg, k) {
				fit = append(fit, k)
			}
		}
		switch len(fit) {
		case 0:
		case 1:
			static[alg] = fit[0]
		default:
			static[alg] = jwt.VerificationKeySet{Keys: fit}
		}
	}
	return static, nil
}

// loadKey reads one key entry: "env:NAME" is an HMAC secret in that
// environment variable; anything else is a PEM file holding a public key
// or a certificate.
func loadKey(entry string, getenv func(string) string) (any, error) {
	if name, ok := strings.CutPrefix(entry, models.KeyEnvPrefix); ok {
		secret := getenv(name)
		if secret == "" {
			return nil, fmt.Errorf("environment variable %s is empty or unset", name)
		}
		if len(secret) < minHMACBytes {
			return nil, fmt.Errorf("the HMAC secret in %s is %d bytes; at least %d are needed", name, len(secret), minHMACBytes)
		}
		return []byte(secret), nil
	}
	b, err := os.ReadFile(entry)
	if err != nil {
		return nil, fmt.Errorf("read PEM file: %w", err)
	}
	return parsePublicPEM(b)
}

// parsePublicPEM parses a PEM public key (PKIX or PKCS#1) or certificate.
// A private key is refused: the gateway never needs one.
func parsePublicPEM(b []byte) (any, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		return k, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA public key: %w", err)
		}
		return k, nil
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return c.PublicKey, nil
	}
	if strings.Contains(block.Type, "PRIVATE") {
		return nil, fmt.Errorf("PEM block is a %s: give the public key, never the private one", block.Type)
	}
	return nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY or CERTIFICATE)", block.Type)
}

func keyKind(k any) string {
	switch k.(type) {
	case []byte:
		return "HMAC secret"
	case *rsa.PublicKey:
		return "RSA public key"
	case *ecdsa.PublicKey:
		return "ECDSA public key"
	case ed25519.PublicKey:
		return "Ed25519 public key"
	}
	return fmt.Sprintf("%T", k)
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

// asymmetric refuses HMAC secrets published in a JWKS: a JWKS is public,
// so anyone could sign with them.
func asymmetric(k any) bool { _, sym := k.([]byte); return !sym }

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
