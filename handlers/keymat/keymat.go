// Package keymat reads and checks key material: the public keys the local
// verifier checks tokens with (handlers/authn) and the private key the
// gateway signs identity tokens with (handlers' identity token). It has no
// HTTP in it.
package keymat

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"jwtgate/models"
	"math/big"
	"os"
	"path/filepath"
	"strings"
)

// MinRSABits is the smallest RSA modulus accepted for verifying tokens, as
// for the gateway's own identity key.
const MinRSABits = 2048

// CheckPublic refuses a key the gateway must not verify with: an RSA
// public key under MinRSABits.
func CheckPublic(k any) error {
	if rk, ok := k.(*rsa.PublicKey); ok && rk.N.BitLen() < MinRSABits {
		return fmt.Errorf("an RSA key of %d bits; at least %d are needed", rk.N.BitLen(), MinRSABits)
	}
	return nil
}

// ParsePublicPEM parses a PEM public key (PKIX or PKCS#1) or certificate.
// A private key is refused: the gateway never needs one.
func ParsePublicPEM(b []byte) (any, error) {
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

// Kind names a key's type for error messages.
func Kind(k any) string {
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

// LoadOrCreatePrivate reads a PKCS#8 PEM private key of the algorithm's type,
// or generates one and writes it without ever exposing a partial file:
// the key goes to a temporary file that is then linked into place, so two
// replicas starting at once agree on one key.
func LoadOrCreatePrivate(path, alg string) (crypto.Signer, bool, error) {
	key, err := ReadPrivate(path, alg)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	gen, err := generate(alg)
	if err != nil {
		return nil, false, err
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
		key, err := ReadPrivate(path, alg) // another replica won the race: use its key
		return key, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("write key file: %w", err)
	}
	return gen, true, nil
}

// ReadPrivate reads a PEM private key (PKCS#8, SEC 1 or PKCS#1) of the
// type alg needs: an EC P-256 key for ES256, an RSA key of at least
// MinRSABits for RS256.
func ReadPrivate(path, alg string) (crypto.Signer, error) {
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
		if alg != models.AlgRS256 || k.N.BitLen() < MinRSABits {
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

// PublicJWK renders a public key's required JWK members (RFC 7517/7518).
func PublicJWK(pub crypto.PublicKey) (map[string]any, error) {
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

// Thumbprint is the RFC 7638 JWK thumbprint: SHA-256 over the required
// members in lexical order (json.Marshal sorts map keys).
func Thumbprint(jwk map[string]any) (string, error) {
	b, err := json.Marshal(jwk)
	if err != nil {
		return "", fmt.Errorf("jwk thumbprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// KeyID is a public key's kid: the RFC 7638 thumbprint of its JWK.
func KeyID(pub crypto.PublicKey) (string, error) {
	jwk, err := PublicJWK(pub)
	if err != nil {
		return "", err
	}
	return Thumbprint(jwk)
}
