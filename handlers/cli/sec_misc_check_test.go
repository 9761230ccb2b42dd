package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"jwtgate/tests/fakeauth"
)

// secMiscPEM writes a PEM block to a new file with the given mode.
func secMiscPEM(t *testing.T, typ string, der []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "identity.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// check loads identity_token.key_file as serve would: a file serve would
// refuse is a problem naming the key; a missing one is fine (serve
// generates it) and check does not create it.
func TestSecMiscCheckLoadsIdentityKey(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(&ec256.PublicKey)
	missing := filepath.Join(t.TempDir(), "new.pem")
	for _, c := range []struct {
		name, alg, file string
		want            string // "" ok, "warning", or a problem's text
	}{
		{"es256 ok", "ES256", secMiscPEM(t, "PRIVATE KEY", pkcs8(ec256), 0o600), ""},
		{"es256 sec1", "ES256", secMiscPEM(t, "EC PRIVATE KEY", func() []byte { b, _ := x509.MarshalECPrivateKey(ec256); return b }(), 0o600), ""},
		{"rs256 ok", "RS256", secMiscPEM(t, "PRIVATE KEY", pkcs8(rsa2048), 0o600), ""},
		{"readable by others", "ES256", secMiscPEM(t, "PRIVATE KEY", pkcs8(ec256), 0o644), "warning"},
		{"missing", "ES256", missing, ""},
		{"garbage", "ES256", func() string {
			p := filepath.Join(t.TempDir(), "g.pem")
			_ = os.WriteFile(p, []byte("not a key\n"), 0o600)
			return p
		}(), "no PEM block"},
		{"truncated der", "ES256", secMiscPEM(t, "PRIVATE KEY", pkcs8(ec256)[:20], 0o600), "identity_token.key_file"},
		{"public key", "ES256", secMiscPEM(t, "PUBLIC KEY", pubDER, 0o600), "not a private key"},
		{"p384 for es256", "ES256", secMiscPEM(t, "PRIVATE KEY", pkcs8(ec384), 0o600), "P-384"},
		{"ec for rs256", "RS256", secMiscPEM(t, "PRIVATE KEY", pkcs8(ec256), 0o600), "RS256 needs"},
		{"rsa for es256", "ES256", secMiscPEM(t, "PRIVATE KEY", pkcs8(rsa2048), 0o600), "ES256 needs"},
		{"rsa 1024", "RS256", secMiscPEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024), 0o600), "1024-bit"},
		{"directory missing", "ES256", filepath.Join(t.TempDir(), "no", "such", "k.pem"), "does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeConfig(t, `
auth_service:
  url: "`+fa.URL()+`"
database:
  dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"
identity_token:
  enabled: true
  algorithm: `+c.alg+`
  key_file: "`+c.file+`"
`)
			out, _, err := runCLI(t, "check", "--config", cfg)
			switch c.want {
			case "":
				if err != nil || !strings.Contains(out, "identity_token.key_file ("+c.file+"):\n  ok") {
					t.Fatalf("check: %v\n%s", err, out)
				}
			case "warning":
				if err != nil || !strings.Contains(out, "warning: the private key is readable by others") {
					t.Fatalf("check: %v\n%s", err, out)
				}
			default:
				if !errors.Is(err, ErrFailed) || !strings.Contains(out, "problem: identity_token.key_file: ") || !strings.Contains(out, c.want) {
					t.Fatalf("check: %v; want a problem naming identity_token.key_file and %q:\n%s", err, c.want, out)
				}
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("check created the missing key file: %v", err)
	}
}
