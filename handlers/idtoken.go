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
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"jwtgate/handlers/keymat"
	"jwtgate/models"
)

// signer mints the identity token (X-User-Token) with the gateway's own key
// and serves that key's public half as a JWKS.
type signer struct {
	method   jwt.SigningMethod
	key      crypto.Signer
	kid      string
	jwks     []byte // pre-rendered /.well-known/jwks.json
	lifetime time.Duration
	issuer   string
	now      func() time.Time
}

// newSigner loads identity_token.key_file, or creates it (mode 0600) when
// it does not exist yet.
func newSigner(cfg models.IdentityToken, now func() time.Time, log *slog.Logger) (*signer, error) {
	key, created, err := keymat.LoadOrCreatePrivate(cfg.KeyFile, cfg.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("identity_token.key_file: %w", err)
	}
	if created {
		log.Info("generated identity token key", "key_file", cfg.KeyFile, "algorithm", cfg.Algorithm)
	} else if fi, err := os.Stat(cfg.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("identity token key file is readable by others; chmod 600 it", "key_file", cfg.KeyFile, "mode", fi.Mode().Perm().String())
	}
	jwk, err := keymat.PublicJWK(key.Public())
	if err != nil {
		return nil, fmt.Errorf("identity_token.key_file: %w", err)
	}
	kid, err := keymat.Thumbprint(jwk)
	if err != nil {
		return nil, err
	}
	jwk["kid"], jwk["use"], jwk["alg"] = kid, "sig", cfg.Algorithm
	jwks, err := json.Marshal(map[string]any{"keys": []any{jwk}})
	if err != nil {
		return nil, fmt.Errorf("render jwks: %w", err)
	}
	method := jwt.SigningMethod(jwt.SigningMethodES256)
	if cfg.Algorithm == models.AlgRS256 {
		method = jwt.SigningMethodRS256
	}
	return &signer{method: method, key: key, kid: kid, jwks: jwks, lifetime: cfg.Lifetime, issuer: cfg.Issuer, now: now}, nil
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

// handleJWKS serves the identity token's public key.
func handleJWKS(s *signer) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/json", s.jwks)
	}
}
