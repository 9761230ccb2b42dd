package handlers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

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
	key, created, err := loadOrCreateKey(cfg.KeyFile, cfg.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("identity_token.key_file: %w", err)
	}
	if created {
		log.Info("generated identity token key", "key_file", cfg.KeyFile, "algorithm", cfg.Algorithm)
	} else if fi, err := os.Stat(cfg.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("identity token key file is readable by others; chmod 600 it", "key_file", cfg.KeyFile, "mode", fi.Mode().Perm().String())
	}
	jwk, err := publicJWK(key.Public())
	if err != nil {
		return nil, fmt.Errorf("identity_token.key_file: %w", err)
	}
	kid, err := thumbprint(jwk)
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
	_, err := readKey(cfg.KeyFile, cfg.Algorithm)
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

// loadOrCreateKey reads a PKCS#8 PEM private key of the algorithm's type,
// or generates one and writes it without ever exposing a partial file:
// the key goes to a temporary file that is then linked into place, so two
// replicas starting at once agree on one key.
func loadOrCreateKey(path, alg string) (crypto.Signer, bool, error) {
	key, err := readKey(path, alg)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	var gen crypto.Signer
	if alg == models.AlgRS256 {
		gen, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		gen, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, false, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(gen)
	if err != nil {
		return nil, false, fmt.Errorf("encode key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jwtgate-key-*")
	if err != nil {
		return nil, false, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	werr := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close()); err != nil {
		return nil, false, fmt.Errorf("write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		key, err := readKey(path, alg) // another replica won the race: use its key
		return key, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("write key file: %w", err)
	}
	return gen, true, nil
}

func readKey(path, alg string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var k any
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block %q is not a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if alg != models.AlgES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s holds an EC %s key; algorithm %s needs %s", path, k.Curve.Params().Name, alg, wantKey(alg))
		}
		return k, nil
	case *rsa.PrivateKey:
		if alg != models.AlgRS256 || k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%s holds a %d-bit RSA key; algorithm %s needs %s", path, k.N.BitLen(), alg, wantKey(alg))
		}
		return k, nil
	}
	return nil, fmt.Errorf("%s: unsupported key type %T; algorithm %s needs %s", path, k, alg, wantKey(alg))
}

func wantKey(alg string) string {
	if alg == models.AlgRS256 {
		return "an RSA key of at least 2048 bits"
	}
	return "an EC P-256 key"
}

// publicJWK renders a public key's required JWK members (RFC 7517/7518).
func publicJWK(pub crypto.PublicKey) (map[string]any, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		pt, err := k.Bytes() // 0x04 || X || Y, each 32 bytes for P-256
		if err != nil {
			return nil, fmt.Errorf("encode public key: %w", err)
		}
		n := (len(pt) - 1) / 2
		return map[string]any{"kty": "EC", "crv": "P-256", "x": b64(pt[1 : 1+n]), "y": b64(pt[1+n:])}, nil
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}, nil
	}
	return nil, fmt.Errorf("unsupported public key %T", pub)
}

// thumbprint is the RFC 7638 JWK thumbprint: SHA-256 over the required
// members in lexical order (json.Marshal sorts map keys).
func thumbprint(jwk map[string]any) (string, error) {
	b, err := json.Marshal(jwk)
	if err != nil {
		return "", fmt.Errorf("jwk thumbprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
