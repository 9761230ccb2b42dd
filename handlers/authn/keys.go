package authn

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/handlers/keymat"
	"jwtgate/models"
)

// minHMACBytes is the shortest HMAC secret accepted: RFC 7518 §3.2 asks for
// a key at least as long as the hash output.
const minHMACBytes = 32

// keyFits reports whether key may verify alg. Checked for every key,
// whatever its source, on top of golang-jwt's own type assertions.
func keyFits(alg string, key any) bool {
	switch alg {
	case "HS256", "HS384", "HS512":
		k, ok := key.([]byte)
		return ok && len(k) > 0
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N.BitLen() >= keymat.MinRSABits
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
	var loaded []any
	var errs []error
	for i, entry := range ic.Keys {
		setting := fmt.Sprintf("%s.keys[%d]", ic.Setting, i)
		k, err := loadKey(entry, getenv)
		if err == nil {
			err = keymat.CheckPublic(k)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", setting, err))
			continue
		}
		if !slices.ContainsFunc(algs, func(a string) bool { return keyFits(a, k) }) {
			errs = append(errs, fmt.Errorf("%s: a %s fits none of auth.local.algorithms %v", setting, keymat.Kind(k), algs))
			continue
		}
		loaded = append(loaded, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	static := map[string]any{}
	for _, alg := range algs {
		var fit []jwt.VerificationKey
		for _, k := range loaded {
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
	return keymat.ParsePublicPEM(b)
}

// asymmetric refuses HMAC secrets published in a JWKS: a JWKS is public,
// so anyone could sign with them.
func asymmetric(k any) bool { _, sym := k.([]byte); return !sym }
