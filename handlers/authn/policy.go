package authn

import (
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

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
			JWKSURL: is.JWKSURL, Keys: is.Keys, Audience: cmp.Or(is.Audience, l.Audience),
		})
	}
	return cfg
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
	rsa      *rsaKeys
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
	// validator checks the claims with the parser's rules (exp required,
	// leeway, clock, iss, aud), for a token the pre-checks decoded.
	validator *jwt.Validator
	// static maps an allowed alg to the configured keys that fit it: a
	// single key or a jwt.VerificationKeySet. Nil for a JWKS.
	static map[string]any
	jwks   *jwksKeys
	algs   []string // the allowlist (auth.local.algorithms)
	// rsa checks RS256/RS384/RS512 signatures with each key's modulus
	// precomputed once (shared by the Local's key sets).
	rsa *rsaKeys
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
	l := &Local{byIssuer: map[string]*keySet{}, algs: slices.Clone(cfg.Algorithms), cancel: cancel, rsa: newRSAKeys()}
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
		ks := &keySet{setting: ic.Setting, issuer: ic.Issuer, parser: jwt.NewParser(opts...), validator: jwt.NewValidator(opts...), algs: l.algs, rsa: l.rsa}
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

// Usable returns nil when every JWKS has been fetched and holds at least
// one key that can verify tokens (Ready, and not an empty or wholly
// unusable set, with which every token would get 401). A reload checks it
// before it puts a new verifier in place of a working one.
func (l *Local) Usable() error {
	if err := l.Ready(); err != nil {
		return err
	}
	var errs []error
	for _, ks := range l.sets {
		if ks.jwks != nil && ks.jwks.signingKeys() == 0 {
			errs = append(errs, fmt.Errorf("%s.jwks_url: JWKS %s holds no key that can verify tokens", ks.setting, ks.jwks.url))
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
			return errUntrustedIssuer
		}
	}
	return l.verify(ctx, ks, raw)
}

// VerifyToken is Verify for a token the pre-checks (models.PrecheckToken)
// have decoded already: its issuer's keys are picked by tok.Issuer, not by
// decoding raw again.
func (l *Local) VerifyToken(ctx context.Context, raw string, tok models.Token) error {
	ks := l.single
	if ks == nil {
		if tok.Issuer == "" {
			return errNoIssuer
		}
		if ks = l.byIssuer[tok.Issuer]; ks == nil {
			return errUntrustedIssuer
		}
	}
	return l.verifyDecoded(ctx, ks, raw, &tok)
}

// Refusals of a token whose iss picks no trusted issuer.
var (
	errNoIssuer        = &models.TokenError{Reason: models.ReasonUnknownIssuer, Detail: "iss missing or not a string"}
	errUntrustedIssuer = &models.TokenError{Reason: models.ReasonUnknownIssuer, Detail: "iss is not a trusted issuer"}
)

// verify checks raw against one issuer's keys and rules.
func (l *Local) verify(ctx context.Context, ks *keySet, raw string) error {
	return l.verifyDecoded(ctx, ks, raw, nil)
}

// verifyDecoded is verify for a token the pre-checks may have decoded
// (pre, nil: not decoded): its header, signature and claims are then used
// as they are, unless decodeInto says the claims need golang-jwt's own
// decoding to be read the same way. Either way the checks are ks.check's.
func (l *Local) verifyDecoded(ctx context.Context, ks *keySet, raw string, pre *models.Token) error {
	// The claims escape (Validate takes them as an interface): for a
	// token the pre-checks decoded from raw, they share one allocation
	// with their dates and the token (decodedCheck).
	var dc *decodedCheck
	var claims *jwt.RegisteredClaims
	if pre != nil && pre.DecodedFrom(raw) {
		dc = new(decodedCheck)
		claims = &dc.claims
	} else {
		claims = new(jwt.RegisteredClaims)
	}
	keyFor := func(t *jwt.Token) (any, error) { return ks.key(ctx, t) }
	parse := func() (*jwt.Token, error) {
		*claims = jwt.RegisteredClaims{}
		if dc != nil && dc.into(raw, pre) {
			return &dc.tok, ks.check(raw, &dc.tok, claims, keyFor)
		}
		return ks.parse(raw, claims, keyFor)
	}
	tok, err := parse()
	if err == nil {
		return nil
	}
	err = classify(tok, claims, err, l.algs)
	if ks.jwks != nil && models.TokenReason(err) == models.ReasonBadSignature && tok != nil && tok.Header["kid"] == nil {
		// Stock SimpleJWT tokens carry no kid, so a rotated key does not
		// show as an unknown kid: refetch (rate-limited, shared) and try
		// once more if the key set changed.
		gen := ks.jwks.store.generation()
		ks.jwks.refetch(ctx, "")
		if ks.jwks.store.generation() != gen {
			if tok, err = parse(); err == nil {
				return nil
			}
			err = classify(tok, claims, err, l.algs)
		}
	}
	return err
}

// parse is ks.parser.ParseWithClaims with the signature checked by check
// (verifySignature: RSA with its modulus precomputed), for a token the
// pre-checks did not decode (a cached verdict in hybrid mode): the same
// token, claims and errors. The parser's own ParseUnverified decodes raw
// with its options; in golang-jwt v5.3.1 it decodes the signature too,
// with ParseWithClaims' error, before the alg allowlist is looked at.
func (ks *keySet) parse(raw string, claims *jwt.RegisteredClaims, keyFor jwt.Keyfunc) (*jwt.Token, error) {
	t, _, err := ks.parser.ParseUnverified(raw, claims)
	if err != nil {
		return t, err
	}
	return t, ks.check(raw, t, claims, keyFor)
}

// check is what ks.parser's ParseWithClaims does after decoding, in its
// order and with its errors (classify reads them): the alg allowlist, the
// key, the signature over the first two segments, then the claims.
func (ks *keySet) check(raw string, t *jwt.Token, claims *jwt.RegisteredClaims, keyFor jwt.Keyfunc) error {
	alg := t.Method.Alg()
	if !slices.Contains(ks.algs, alg) {
		return fmt.Errorf("signing method %v is invalid: %w", alg, jwt.ErrTokenSignatureInvalid)
	}
	got, err := keyFor(t)
	if err != nil {
		return fmt.Errorf("error while executing keyfunc: %w: %w", jwt.ErrTokenUnverifiable, err)
	}
	signed := signedPart(raw) // header.claims as received: ParseWithClaims' parts[0] + "." + parts[1] (t decoded raw: exactly three segments)
	switch have := got.(type) {
	case jwt.VerificationKeySet:
		if len(have.Keys) == 0 {
			return fmt.Errorf("keyfunc returned empty verification key set: %w", jwt.ErrTokenUnverifiable)
		}
		for _, key := range have.Keys {
			if err = ks.verifySignature(t, signed, key); err == nil {
				break
			}
		}
	default:
		err = ks.verifySignature(t, signed, have)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", jwt.ErrTokenSignatureInvalid, err)
	}
	if err := ks.validator.Validate(claims); err != nil {
		return fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err)
	}
	return nil
}

// signedPart is raw[:strings.LastIndexByte(raw, '.')], the dots found
// forward: LastIndexByte reads the signature segment back a byte at a
// time (~2k Ir for RS256's 342 characters), IndexByte is vectorised.
// With exactly two dots, the second is the last; anything else is left
// to LastIndexByte.
func signedPart(raw string) string {
	if i := strings.IndexByte(raw, '.'); i >= 0 {
		if j := strings.IndexByte(raw[i+1:], '.'); j >= 0 {
			j += i + 1
			if strings.IndexByte(raw[j+1:], '.') < 0 {
				return raw[:j]
			}
		}
	}
	return raw[:strings.LastIndexByte(raw, '.')]
}

// verifySignature is t.Method.Verify(signed, t.Signature, key), with an
// RSA key and RS256/RS384/RS512 checked by ks.rsa (its modulus precomputed
// once): the same results and errors.
func (ks *keySet) verifySignature(t *jwt.Token, signed string, key any) error {
	if m, ok := t.Method.(*jwt.SigningMethodRSA); ok {
		if pub, ok := key.(*rsa.PublicKey); ok {
			return ks.rsa.verify(m, signed, t.Signature, pub)
		}
	}
	return t.Method.Verify(signed, t.Signature, key)
}

// registeredNames are the JSON names of jwt.RegisteredClaims' fields.
var registeredNames = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// decodedCheck is, in one allocation, what checking a token the
// pre-checks decoded keeps on the heap: its claims, the dates and the
// one-string audience they point to, and the token (ks.key hands it to
// the JWKS's keyfunc). One by one they were up to six allocations (~0.3 KB).
type decodedCheck struct {
	claims jwt.RegisteredClaims
	dates  [3]jwt.NumericDate // exp, nbf, iat
	aud    [1]string          // a string aud
	tok    jwt.Token
}

// into is decodeInto with dc's storage.
func (dc *decodedCheck) into(raw string, pre *models.Token) bool {
	return decodeInto(raw, pre, &dc.claims, &dc.dates, &dc.aud, &dc.tok)
}

// decodeInto writes pre as golang-jwt's parser would have decoded it to
// claims and tok (the dates and a one-string audience in the storage the
// caller provides) and reports true, when pre carries the header and
// signature decoded from raw itself (models.Token.DecodedFrom) and its
// claims convert exactly: string iss, sub and jti, a string or list of
// strings aud, integer exp, nbf and iat (json.Number integers, read as
// float64 by NumericDate: exact below 2^53), and no other spelling of a
// registered name (encoding/json matches struct fields case-insensitively,
// so "EXP" would fill ExpiresAt). Anything else is decoded by golang-jwt.
func decodeInto(raw string, pre *models.Token, claims *jwt.RegisteredClaims, dates *[3]jwt.NumericDate, aud1 *[1]string, tok *jwt.Token) bool {
	if pre == nil || !pre.DecodedFrom(raw) || pre.Signature == nil || pre.Claims == nil {
		return false
	}
	m := jwt.GetSigningMethod(pre.Alg)
	if m == nil {
		return false
	}
	for k, v := range pre.Claims {
		switch k {
		case "iss", "sub", "jti":
			s, ok := v.(string)
			if !ok {
				return false
			}
			switch k {
			case "iss":
				claims.Issuer = s
			case "sub":
				claims.Subject = s
			default:
				claims.ID = s
			}
		case "aud":
			switch a := v.(type) {
			case string:
				aud1[0] = a
				claims.Audience = aud1[:]
			case []any:
				aud := make(jwt.ClaimStrings, 0, len(a))
				for _, e := range a {
					s, ok := e.(string)
					if !ok {
						return false
					}
					aud = append(aud, s)
				}
				claims.Audience = aud
			default:
				return false
			}
		case "exp", "nbf", "iat":
			n, ok := v.(int64)
			if !ok || n > 1<<53 || n < -(1<<53) {
				return false
			}
			d := jwt.NewNumericDate(time.Unix(n, 0)) // inlined: on the stack
			switch k {
			case "exp":
				dates[0] = *d
				claims.ExpiresAt = &dates[0]
			case "nbf":
				dates[1] = *d
				claims.NotBefore = &dates[1]
			default:
				dates[2] = *d
				claims.IssuedAt = &dates[2]
			}
		default:
			if spellsRegisteredName(k) {
				return false
			}
		}
	}
	*tok = jwt.Token{Raw: raw, Method: m, Header: pre.Header, Claims: claims, Signature: pre.Signature}
	return true
}

// spellsRegisteredName reports whether k is another spelling of a
// registered claim name (strings.EqualFold with one of registeredNames),
// which encoding/json would read into jwt.RegisteredClaims.
func spellsRegisteredName(k string) bool {
	if len(k) < 3 || len(k) > 12 {
		return false // no other spelling of a three-letter name is this short or long
	}
	if len(k) != 3 && !strings.ContainsFunc(k, func(r rune) bool { return r >= utf8.RuneSelf }) {
		// EqualFold compares rune by rune, and no ASCII rune folds to one
		// of more than a byte: an ASCII spelling of a three-letter name
		// has three bytes. Skips seven EqualFolds (~0.3k Ir) for names
		// like user_id.
		return false
	}
	for _, name := range registeredNames {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
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
		return "", errNoIssuer
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
