package authn

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// rsaTestKeys are generated once per test binary: 1024, 2048, 3072 and
// 4096 bits.
var rsaTestKeys = sync.OnceValues(func() (map[int]*rsa.PrivateKey, error) {
	ks := map[int]*rsa.PrivateKey{}
	for _, bits := range []int{1024, 2048, 3072, 4096} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		ks[bits] = k
	}
	return ks, nil
})

func rsaKeysBySize(t testing.TB) map[int]*rsa.PrivateKey {
	t.Helper()
	ks, err := rsaTestKeys()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// stdlibVerify is what golang-jwt does for RS256/RS384/RS512: hash, then
// crypto/rsa.VerifyPKCS1v15 (which rebuilds the modulus every call).
func stdlibVerify(m *jwt.SigningMethodRSA, signed string, sig []byte, pub *rsa.PublicKey) error {
	return m.Verify(signed, sig, pub)
}

// sameResult reports whether two verification results are the same: both
// nil, or the same error (rsa.ErrVerification, or the same message for
// the errors crypto/rsa builds per call).
func sameResult(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return errors.Is(a, rsa.ErrVerification) == errors.Is(b, rsa.ErrVerification) && a.Error() == b.Error()
}

// rawSign "signs" em as it is, em^d mod n: a valid RSA value whatever its
// padding, to check that bad padding is refused.
func rawSign(t testing.TB, k *rsa.PrivateKey, em []byte) []byte {
	t.Helper()
	m := new(big.Int).SetBytes(em)
	if m.Cmp(k.N) >= 0 {
		t.Fatalf("em %x... is not below N", em[:4])
	}
	return new(big.Int).Exp(m, k.D, k.N).FillBytes(make([]byte, k.Size()))
}

// encodeEM builds 0x00 0x01 0xFF.. 0x00 prefix hash for a k-byte modulus,
// then lets edit change it.
func encodeEM(k int, prefix, hashed []byte, edit func(em []byte) []byte) []byte {
	em := make([]byte, k)
	em[1] = 1
	tLen := len(prefix) + len(hashed)
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-tLen:], prefix)
	copy(em[k-len(hashed):], hashed)
	if edit != nil {
		em = edit(em)
	}
	return em
}

func sum(m *jwt.SigningMethodRSA, msg string) []byte {
	h := m.Hash.New()
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// sha1DigestInfo is SHA-1's DigestInfo prefix, for a wrong-prefix case.
var sha1DigestInfo = []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14}

// TestRSAVerifyMatchesStdlib: rsaKeys.verify gives the result and error
// crypto/rsa.VerifyPKCS1v15 gives (through golang-jwt), for valid
// signatures of every size and hash and for every way a signature can be
// wrong: bytes, length, range, key, and padding built by hand.
func TestRSAVerifyMatchesStdlib(t *testing.T) {
	ks := rsaKeysBySize(t)
	const msg = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiJ9"
	rs256, rs384, rs512 := jwt.SigningMethodRS256, jwt.SigningMethodRS384, jwt.SigningMethodRS512
	k2 := ks[2048]
	signWith := func(k *rsa.PrivateKey, m *jwt.SigningMethodRSA, msg string) []byte {
		sig, err := rsa.SignPKCS1v15(nil, k, m.Hash, sum(m, msg))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	valid := signWith(k2, rs256, msg)
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	n := k2.N.FillBytes(make([]byte, k2.Size()))
	nPlus1 := new(big.Int).Add(k2.N, big.NewInt(1)).FillBytes(make([]byte, k2.Size()))
	one := make([]byte, k2.Size())
	one[len(one)-1] = 1

	// A valid 1024-bit signature whose first byte is zero (about 1 in 200).
	k1 := ks[1024]
	var leadingZero []byte
	var lzMsg string
	for i := range 20000 {
		m := msg + strings.Repeat(".", i%7) + string(rune('a'+i%26)) + big.NewInt(int64(i)).String()
		if s := signWith(k1, rs256, m); s[0] == 0 {
			leadingZero, lzMsg = s, m
			break
		}
	}
	if leadingZero == nil {
		t.Fatal("no signature with a leading zero byte in 20000 tries")
	}

	h256 := sum(rs256, msg)
	prefix256 := pkcs1DigestInfo[crypto.SHA256]
	padded := func(f func(em []byte) []byte) []byte {
		return rawSign(t, k2, encodeEM(k2.Size(), prefix256, h256, f))
	}
	otherKey := ks[3072]
	sameSizeOther, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	type tc struct {
		name  string
		key   *rsa.PublicKey
		m     *jwt.SigningMethodRSA
		msg   string
		sig   []byte
		valid bool
	}
	cases := []tc{}
	for _, bits := range []int{1024, 2048, 3072, 4096} {
		for _, m := range []*jwt.SigningMethodRSA{rs256, rs384, rs512} {
			cases = append(cases, tc{m.Alg() + " " + big.NewInt(int64(bits)).String() + " bits", &ks[bits].PublicKey, m, msg, signWith(ks[bits], m, msg), true})
		}
	}
	cases = append(cases,
		tc{"reference em signed raw", &k2.PublicKey, rs256, msg, padded(nil), true},
		tc{"other message", &k2.PublicKey, rs256, msg + "x", valid, false},
		tc{"wrong hash: RS256 signature checked as RS384", &k2.PublicKey, rs384, msg, valid, false},
		tc{"wrong hash: RS256 signature checked as RS512", &k2.PublicKey, rs512, msg, valid, false},
		tc{"flipped bit in the middle", &k2.PublicKey, rs256, msg, edit(func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }), false},
		tc{"flipped low bit", &k2.PublicKey, rs256, msg, edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), false},
		tc{"short by one", &k2.PublicKey, rs256, msg, valid[:len(valid)-1], false},
		tc{"long by one (trailing byte)", &k2.PublicKey, rs256, msg, append(append([]byte(nil), valid...), 0), false},
		tc{"long by one (leading zero)", &k2.PublicKey, rs256, msg, append([]byte{0}, valid...), false},
		tc{"valid with its leading zero", &k1.PublicKey, rs256, lzMsg, leadingZero, true},
		tc{"leading zero stripped", &k1.PublicKey, rs256, lzMsg, leadingZero[1:], false},
		tc{"empty", &k2.PublicKey, rs256, msg, nil, false},
		tc{"sig = N", &k2.PublicKey, rs256, msg, n, false},
		tc{"sig = N+1", &k2.PublicKey, rs256, msg, nPlus1, false},
		tc{"sig all 0xFF (> N)", &k2.PublicKey, rs256, msg, edit(func(b []byte) []byte {
			for i := range b {
				b[i] = 0xff
			}
			return b
		}), false},
		tc{"sig = 0", &k2.PublicKey, rs256, msg, make([]byte, k2.Size()), false},
		tc{"sig = 1", &k2.PublicKey, rs256, msg, one, false},
		tc{"signed by a 3072-bit key", &k2.PublicKey, rs256, msg, signWith(otherKey, rs256, msg), false},
		tc{"signed by another 2048-bit key", &k2.PublicKey, rs256, msg, signWith(sameSizeOther, rs256, msg), false},
		tc{"checked with another 2048-bit key", &sameSizeOther.PublicKey, rs256, msg, valid, false},
		tc{"padding: block type 0x02", &k2.PublicKey, rs256, msg, padded(func(em []byte) []byte { em[1] = 2; return em }), false},
		tc{"padding: first byte 0x01", &k2.PublicKey, rs256, msg, padded(func(em []byte) []byte { em[0] = 1; return em }), false},
		tc{"padding: FF run one short, separator doubled", &k2.PublicKey, rs256, msg, padded(func(em []byte) []byte {
			em[len(em)-len(prefix256)-len(h256)-2] = 0
			return em
		}), false},
		tc{"padding: zeros instead of FF", &k2.PublicKey, rs256, msg, padded(func(em []byte) []byte {
			for i := 2; i < len(em)-len(prefix256)-len(h256)-1; i++ {
				em[i] = 0
			}
			return em
		}), false},
		tc{"padding: missing 0x00 separator", &k2.PublicKey, rs256, msg, padded(func(em []byte) []byte {
			em[len(em)-len(prefix256)-len(h256)-1] = 0xff
			return em
		}), false},
		tc{"padding: SHA-1 DigestInfo with a SHA-256 hash", &k2.PublicKey, rs256, msg,
			rawSign(t, k2, encodeEM(k2.Size(), sha1DigestInfo, h256, nil)), false},
		tc{"padding: no DigestInfo", &k2.PublicKey, rs256, msg, rawSign(t, k2, encodeEM(k2.Size(), nil, h256, nil)), false},
		tc{"padding: trailing garbage", &k2.PublicKey, rs256, msg, padded(func(em []byte) []byte {
			// T moved four bytes left, four bytes of garbage after it.
			tLen := len(prefix256) + len(h256)
			copy(em[len(em)-tLen-4:], em[len(em)-tLen:])
			em[len(em)-tLen-5] = 0
			copy(em[len(em)-4:], "junk")
			return em
		}), false},
		tc{"even exponent (crypto/rsa's refusal)", &rsa.PublicKey{N: k2.N, E: 65538}, rs256, msg, valid, false},
		tc{"exponent 1 (crypto/rsa's refusal)", &rsa.PublicKey{N: k2.N, E: 1}, rs256, msg, valid, false},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ks := newRSAKeys()
			got := ks.verify(c.m, c.msg, c.sig, c.key)
			want := stdlibVerify(c.m, c.msg, c.sig, c.key)
			if !sameResult(got, want) {
				t.Fatalf("got %v, crypto/rsa says %v", got, want)
			}
			if (got == nil) != c.valid {
				t.Fatalf("got %v, want valid=%v", got, c.valid)
			}
			if fastPath(c.key) && ks.builds.Load() != 1 {
				t.Fatalf("%d moduli built, want 1: the precomputed path was not taken", ks.builds.Load())
			}
		})
	}
}

// FuzzRSAVerifyMatchesStdlib: for any signature bytes and message, under
// RS256, RS384 and RS512 with a 2048-bit key, rsaKeys.verify and
// crypto/rsa.VerifyPKCS1v15 agree. Run it locally:
// go test -run '^$' -fuzz FuzzRSAVerifyMatchesStdlib -fuzztime 60s ./handlers/authn
func FuzzRSAVerifyMatchesStdlib(f *testing.F) {
	k := keys(f).rsa
	ms := []*jwt.SigningMethodRSA{jwt.SigningMethodRS256, jwt.SigningMethodRS384, jwt.SigningMethodRS512}
	for i, m := range ms {
		msg := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiJ9"
		sig, err := rsa.SignPKCS1v15(nil, k, m.Hash, sum(m, msg))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sig, msg, uint8(i))
		f.Add(sig[1:], msg, uint8(i))
		f.Add(k.N.Bytes(), msg, uint8(i))
	}
	c := newRSAKeys()
	f.Fuzz(func(t *testing.T, sig []byte, msg string, alg uint8) {
		m := ms[int(alg)%len(ms)]
		got := c.verify(m, msg, sig, &k.PublicKey)
		want := stdlibVerify(m, msg, sig, &k.PublicKey)
		if !sameResult(got, want) {
			t.Fatalf("%s over %q, sig %x: got %v, crypto/rsa says %v", m.Alg(), msg, sig, got, want)
		}
	})
}

// rsaCached counts the moduli the cache holds.
func (c *rsaKeys) rsaCached() int {
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	return n
}

// verifyAsGateway checks raw as the Authenticator does: pre-checks, then
// VerifyToken, which checks RS256 with the precomputed modulus.
func verifyAsGateway(t *testing.T, l *Local, raw string) string {
	t.Helper()
	tok, err := models.PrecheckToken(raw, "user_id", 0, testNow)
	if err != nil {
		t.Fatalf("pre-checks: %v", err)
	}
	return reason(t, l.VerifyToken(t.Context(), raw, tok))
}

// tamper flips a bit in raw's signature.
func tamper(raw string) string {
	i := strings.LastIndexByte(raw, '.') + 10
	c := byte('A')
	if raw[i] == 'A' {
		c = 'B'
	}
	return raw[:i] + string(c) + raw[i+1:]
}

// TestLocalRSAPrecomputed: through the local verifier, RS256 tokens pass
// with a PEM key and a JWKS key, each key's modulus built once; a tampered
// signature is still bad_signature (as through golang-jwt's own parse);
// after a JWKS rotation, under a new kid or the same one, the new key is
// used and the old key's modulus leaves the cache once the key is gone.
func TestLocalRSAPrecomputed(t *testing.T) {
	k := keys(t)
	t.Run("PEM", func(t *testing.T) {
		l := newTestLocal(t, LocalConfig{Issuers: staticIssuer("testdata/rsa_public.pem", "testdata/ec_public.pem")}, nil)
		good := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "")
		for range 3 {
			if got := verifyAsGateway(t, l, good); got != "" {
				t.Fatalf("valid RS256 token: %q", got)
			}
		}
		bad := tamper(good)
		if got, before := verifyAsGateway(t, l, bad), reason(t, l.Verify(t.Context(), bad)); got != models.ReasonBadSignature || got != before {
			t.Fatalf("tampered token: reason %q, golang-jwt's parse gives %q, want %q", got, before, models.ReasonBadSignature)
		}
		if n := l.rsa.builds.Load(); n != 1 {
			t.Fatalf("%d moduli built for one PEM key, want 1", n)
		}
	})

	t.Run("JWKS rotation", func(t *testing.T) {
		srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey))
		// Refetches as often as asked: two rotations in a row.
		l := newTestLocal(t, LocalConfig{Issuers: jwksIssuer(srv.URL), RefetchInterval: time.Millisecond}, nil)
		good := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "k1")
		for range 3 {
			if got := verifyAsGateway(t, l, good); got != "" {
				t.Fatalf("valid RS256 token, kid k1: %q", got)
			}
		}
		if got := verifyAsGateway(t, l, sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "")); got != "" {
			t.Fatalf("valid RS256 token without kid: %q", got)
		}
		bad := tamper(good)
		if got, before := verifyAsGateway(t, l, bad), reason(t, l.Verify(t.Context(), bad)); got != models.ReasonBadSignature || got != before {
			t.Fatalf("tampered token: reason %q, golang-jwt's parse gives %q, want %q", got, before, models.ReasonBadSignature)
		}
		if n := l.rsa.builds.Load(); n != 1 {
			t.Fatalf("%d moduli built for one JWK, want 1", n)
		}

		// New kid: refetched on the unknown kid.
		k2, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		srv.set(jwk("k2", "RS256", &k2.PublicKey))
		if got := verifyAsGateway(t, l, sign(t, jwt.SigningMethodRS256, k2, claims(nil), "k2")); got != "" {
			t.Fatalf("new key k2: %q", got)
		}
		// Same kid, new key (tokens without kid: refetched on the bad signature).
		k3, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		srv.set(jwk("k2", "RS256", &k3.PublicKey))
		if got := verifyAsGateway(t, l, sign(t, jwt.SigningMethodRS256, k3, claims(nil), "")); got != "" {
			t.Fatalf("new key under the old kid: %q", got)
		}
		if got := verifyAsGateway(t, l, sign(t, jwt.SigningMethodRS256, k3, claims(nil), "k2")); got != "" {
			t.Fatalf("new key under the old kid, by kid: %q", got)
		}
		if got := verifyAsGateway(t, l, sign(t, jwt.SigningMethodRS256, k2, claims(nil), "k2")); got != models.ReasonBadSignature {
			t.Fatalf("old key k2 under its kid after the rotation: %q, want %q", got, models.ReasonBadSignature)
		}
		if n := l.rsa.builds.Load(); n != 3 {
			t.Fatalf("%d moduli built for three keys, want 3", n)
		}

		// The dropped keys' moduli go with their keys (bounded wait).
		deadline := time.Now().Add(10 * time.Second)
		for l.rsa.rsaCached() > 1 && time.Now().Before(deadline) {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		if n := l.rsa.rsaCached(); n != 1 {
			t.Fatalf("%d moduli cached after the rotations, want 1 (the live key's)", n)
		}
	})
}
