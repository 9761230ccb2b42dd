package handlers

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"jwtgate/handlers/keymat"
	"jwtgate/models"
)

// RetiredKeyMargin is how long past its last possible token's expiry a
// retired identity key stays in the JWKS: the clock skew and exp leeway
// of upstream verifiers (Spring Security's default leeway is 60 s), and
// the few seconds replicas take to notice a rotation (keyPoll), during
// which they still sign with the old key.
const RetiredKeyMargin = time.Minute

// RetiredKeyWindow is how long after its retirement a key stays in the
// JWKS: one token lifetime plus RetiredKeyMargin.
func RetiredKeyWindow(cfg models.IdentityToken) time.Duration { return cfg.Lifetime + RetiredKeyMargin }

// signer mints the identity token (X-User-Token) with the gateway's own key
// and serves that key's public half, and the retired keys still published,
// as a JWKS. It is immutable: a rotation builds a new one (keyring).
type signer struct {
	method   jwt.SigningMethod
	key      crypto.Signer
	kid      string
	jwks     []jwksDoc // pre-rendered /.well-known/jwks.json, by the time each stops being served
	lifetime time.Duration
	issuer   string
	now      func() time.Time
}

// jwksDoc is a rendering of the JWKS served until until (the zero time:
// for ever). The current key comes first.
type jwksDoc struct {
	until time.Time
	body  []byte
}

// publishedKey is a public key in the JWKS: the current one, or a retired
// one until its tokens have expired.
type publishedKey struct {
	kid   string
	jwk   map[string]any
	until time.Time // zero: the current key
}

// loadIdentityKey reads identity_token.key_file; create generates it
// (mode 0600) when it does not exist.
func loadIdentityKey(cfg models.IdentityToken, create bool, log *slog.Logger) (crypto.Signer, error) {
	var key crypto.Signer
	var err error
	created := false
	if create {
		key, created, err = keymat.LoadOrCreatePrivate(cfg.KeyFile, cfg.Algorithm)
	} else {
		key, err = keymat.ReadPrivate(cfg.KeyFile, cfg.Algorithm)
	}
	if err != nil {
		return nil, fmt.Errorf("identity_token.key_file: %w", err)
	}
	if created {
		log.Info("generated identity token key", "key_file", cfg.KeyFile, "algorithm", cfg.Algorithm)
	} else if fi, err := os.Stat(cfg.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("identity token key file is readable by others; chmod 600 it", "key_file", cfg.KeyFile, "mode", fi.Mode().Perm().String())
	}
	return key, nil
}

// keyJWK is a public key's JWK with its kid (the RFC 7638 thumbprint).
func keyJWK(pub crypto.PublicKey, alg string) (publishedKey, error) {
	kid, err := keymat.KeyID(pub)
	if err != nil {
		return publishedKey{}, err
	}
	jwk, err := keymat.PublicJWK(pub)
	if err != nil {
		return publishedKey{}, err
	}
	jwk["kid"], jwk["use"], jwk["alg"] = kid, "sig", alg
	return publishedKey{kid: kid, jwk: jwk}, nil
}

// buildSigner makes the signer of key, publishing the retired keys (other
// than key itself) until their until.
func buildSigner(cfg models.IdentityToken, key crypto.Signer, retired []publishedKey, now func() time.Time) (*signer, error) {
	cur, err := keyJWK(key.Public(), cfg.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("identity_token.key_file: %w", err)
	}
	// Latest expiry first: the JWKS served at a time lists the current key
	// and every retired key whose until is still ahead.
	var keep []publishedKey
	for _, r := range retired {
		if r.kid != cur.kid {
			keep = append(keep, r)
		}
	}
	slices.SortFunc(keep, func(a, b publishedKey) int { return b.until.Compare(a.until) })
	var docs []jwksDoc
	for n := len(keep); n >= 0; n-- {
		keys := []any{cur.jwk}
		for _, r := range keep[:n] {
			keys = append(keys, r.jwk)
		}
		body, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			return nil, fmt.Errorf("render jwks: %w", err)
		}
		var until time.Time
		if n > 0 {
			until = keep[n-1].until
		}
		docs = append(docs, jwksDoc{until: until, body: body})
	}
	method := jwt.SigningMethod(jwt.SigningMethodES256)
	if cfg.Algorithm == models.AlgRS256 {
		method = jwt.SigningMethodRS256
	}
	return &signer{method: method, key: key, kid: cur.kid, jwks: docs, lifetime: cfg.Lifetime, issuer: cfg.Issuer, now: now}, nil
}

// jwksAt is the JWKS served at t: the current key and the retired keys
// still published. No allocation.
func (s *signer) jwksAt(t time.Time) []byte {
	for _, d := range s.jwks {
		if d.until.IsZero() || t.Before(d.until) {
			return d.body
		}
	}
	return s.jwks[len(s.jwks)-1].body
}

// IdentityKeyStatus is what CheckIdentityKey found.
type IdentityKeyStatus int

// The states of identity_token.key_file.
const (
	IdentityKeyOK         IdentityKeyStatus = iota // a usable key, readable by its owner only
	IdentityKeyLooseMode                           // a usable key that others can read
	IdentityKeyToGenerate                          // absent: the gateway generates it on first start
)

// CheckIdentityKey reads identity_token.key_file as the gateway does when
// it starts, without generating a missing key: a file that is not a PEM
// private key of the configured algorithm (an EC P-256 key for ES256, an
// RSA key of at least 2048 bits for RS256) is an error naming the key.
func CheckIdentityKey(cfg models.IdentityToken) (IdentityKeyStatus, error) {
	_, err := keymat.ReadPrivate(cfg.KeyFile, cfg.Algorithm)
	if errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Dir(cfg.KeyFile)
		if fi, derr := os.Stat(dir); derr != nil || !fi.IsDir() {
			return 0, fmt.Errorf("identity_token.key_file: %s does not exist and its directory %s cannot hold a generated key: %w", cfg.KeyFile, dir, errors.Join(err, derr))
		}
		return IdentityKeyToGenerate, nil
	}
	if err != nil {
		return 0, fmt.Errorf("identity_token.key_file: %w", err)
	}
	if fi, err := os.Stat(cfg.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return IdentityKeyLooseMode, nil
	}
	return IdentityKeyOK, nil
}

// RetiredKey is what CheckRetiredKey found in <key_file>.previous.
type RetiredKey struct {
	// Present is false when there is no retired key.
	Present bool
	// Kid is the retired key's kid.
	Kid string
	// RetiredAt is when it stopped signing; Until is when the gateway
	// stops publishing it (RetiredAt + RetiredKeyWindow).
	RetiredAt, Until time.Time
}

// Published reports whether the gateway still serves the key at t.
func (r RetiredKey) Published(t time.Time) bool { return r.Present && t.Before(r.Until) }

// CheckRetiredKey reads <identity_token.key_file>.previous, the key the
// last `jwtgate keys rotate` retired. No file is not an error; one that
// does not parse is, naming the file.
func CheckRetiredKey(cfg models.IdentityToken) (RetiredKey, error) {
	path := keymat.PreviousPath(cfg.KeyFile)
	r, err := keymat.ReadRetired(path)
	if errors.Is(err, fs.ErrNotExist) {
		return RetiredKey{}, nil
	} else if err != nil {
		return RetiredKey{}, fmt.Errorf("identity_token.key_file's retired key: %w", err)
	}
	kid, err := keymat.KeyID(r.Public)
	if err != nil {
		return RetiredKey{}, fmt.Errorf("identity_token.key_file's retired key %s: %w", path, err)
	}
	return RetiredKey{Present: true, Kid: kid, RetiredAt: r.RetiredAt, Until: r.RetiredAt.Add(RetiredKeyWindow(cfg))}, nil
}

// IdentityKeyID is the kid of the key in identity_token.key_file.
func IdentityKeyID(cfg models.IdentityToken) (string, error) {
	key, err := keymat.ReadPrivate(cfg.KeyFile, cfg.Algorithm)
	if err != nil {
		return "", fmt.Errorf("identity_token.key_file: %w", err)
	}
	return keymat.KeyID(key.Public())
}

// sign mints a token for one request: claims plus iss, aud, iat and exp.
func (s *signer) sign(claims jwt.MapClaims, audience string) (string, error) {
	now := s.now()
	claims["iss"] = s.issuer
	claims["aud"] = audience
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(s.lifetime).Unix()
	t := jwt.NewWithClaims(s.method, claims)
	t.Header["kid"] = s.kid
	raw, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign identity token: %w", err)
	}
	return raw, nil
}

// handleJWKS serves the identity token's public keys: the current one
// first, then the retired ones whose tokens may still be valid.
func handleJWKS(keys *keyring) gin.HandlerFunc {
	return func(c *gin.Context) {
		s := keys.current()
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/json", s.jwksAt(s.now()))
	}
}
