package authn

// RS256/RS384/RS512 signature checks with the key's modulus precomputed once.
//
// crypto/rsa.VerifyPKCS1v15 rebuilds the modulus' Montgomery precomputation
// (crypto/rsa.fipsPublicKey -> bigmod.NewModulus) on every call, and there
// is no public API to keep it: with verify: local and RS256 that was 37% of
// the signature check. rsaKeys keeps, per *rsa.PublicKey, a
// *bigmod.Modulus built on first use (filippo.io/bigmod is the stdlib's
// crypto/internal/fips140/bigmod, extracted by its author, with the same
// assembly), and verifyPKCS1v15 mirrors crypto/internal/fips140/rsa's
// verifyPKCS1v15 step by step. Anything that function or crypto/rsa would
// treat differently (keys under 1024 bits, odd exponents, FIPS 140 mode,
// a hash without a DigestInfo prefix here) goes to crypto/rsa itself.

import (
	"bytes"
	"crypto"
	"crypto/fips140"
	"crypto/rsa"
	"io"
	"math/big"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"filippo.io/bigmod"
	"github.com/golang-jwt/jwt/v5"
)

// pkcs1DigestInfo are the DER DigestInfo prefixes of the hashes RS256,
// RS384 and RS512 use (crypto/internal/fips140/rsa's hashPrefixes).
var pkcs1DigestInfo = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// rsaKeys caches one precomputed modulus per RSA public key. Keys are held
// weakly: an entry goes when its key is garbage collected (a JWKS refresh
// that drops a key), so the cache holds no more than the live keys. It is
// safe for concurrent use.
type rsaKeys struct {
	m sync.Map // weak.Pointer[rsa.PublicKey] -> *rsaModulus
	// builds counts moduli built, for tests.
	builds atomic.Int64
}

// rsaModulus is one key's precomputed modulus.
type rsaModulus struct {
	n *big.Int // a copy of the key's N: a key changed in place is noticed
	e int
	m *bigmod.Modulus
}

// newRSAKeys returns an empty cache.
func newRSAKeys() *rsaKeys { return &rsaKeys{} }

// fastPath reports whether verifyPKCS1v15 may check signatures of pub
// itself: crypto/rsa would accept the key as it is (at least 1024 bits,
// so no GODEBUG rsa1024min; an odd modulus; an odd exponent in 3..2³¹-1)
// and FIPS 140 mode, with its extra rules, is off.
func fastPath(pub *rsa.PublicKey) bool {
	return pub.N != nil && pub.N.Sign() > 0 && pub.N.BitLen() >= 1024 && pub.N.Bit(0) == 1 &&
		pub.E >= 3 && pub.E&1 == 1 && pub.E <= 1<<31-1 && !fips140.Enabled()
}

// modulus returns pub's precomputed modulus, building it on first use, or
// nil when pub must go to crypto/rsa.
func (c *rsaKeys) modulus(pub *rsa.PublicKey) *bigmod.Modulus {
	if !fastPath(pub) {
		return nil
	}
	w := weak.Make(pub)
	if v, ok := c.m.Load(w); ok {
		if e := v.(*rsaModulus); e.e == pub.E && e.n.Cmp(pub.N) == 0 {
			return e.m
		}
	}
	m, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil
	}
	c.builds.Add(1)
	e := &rsaModulus{n: new(big.Int).Set(pub.N), e: pub.E, m: m}
	if _, loaded := c.m.Swap(w, e); !loaded {
		runtime.AddCleanup(pub, func(w weak.Pointer[rsa.PublicKey]) { c.m.Delete(w) }, w)
	}
	return m
}

// verify is jwt.SigningMethodRSA.Verify (RS256, RS384, RS512) with pub's
// modulus precomputed once: the same hash of signed, the same result and
// the same errors (rsa.ErrVerification for any bad signature).
func (c *rsaKeys) verify(method *jwt.SigningMethodRSA, signed string, sig []byte, pub *rsa.PublicKey) error {
	if !method.Hash.Available() {
		return jwt.ErrHashUnavailable
	}
	h := method.Hash.New()
	_, _ = io.WriteString(h, signed)
	var buf [64]byte
	hashed := h.Sum(buf[:0])
	if prefix, ok := pkcs1DigestInfo[method.Hash]; ok {
		if m := c.modulus(pub); m != nil {
			return verifyPKCS1v15(m, pub.E, prefix, hashed, sig)
		}
	}
	return rsa.VerifyPKCS1v15(pub, method.Hash, hashed, sig)
}

// verifyPKCS1v15 is crypto/internal/fips140/rsa's verifyPKCS1v15 (RFC 8017
// §8.2.2) for a key whose checks (checkPublicKey) fastPath has done:
// the signature is exactly k bytes, s < N, em = s^e mod N, and em must
// equal 0x00 0x01 0xFF.. 0x00 DigestInfo hash.
func verifyPKCS1v15(m *bigmod.Modulus, e int, prefix, hashed, sig []byte) error {
	k := m.Size()
	if len(sig) != k {
		return rsa.ErrVerification
	}
	s, err := bigmod.NewNat().SetBytes(sig, m) // errors unless s < N
	if err != nil {
		return rsa.ErrVerification
	}
	em := bigmod.NewNat().ExpShortVarTime(s, uint(e), m).Bytes(m)

	// pkcs1v15ConstructEM: EM = 0x00 || 0x01 || PS || 0x00 || T.
	tLen := len(prefix) + len(hashed)
	if k < tLen+2+8+1 {
		return rsa.ErrVerification
	}
	// Compared part by part in place, not against a built copy: one
	// k-byte allocation less per check. em is k bytes (Bytes(m)).
	if len(em) != k || em[0] != 0 || em[1] != 1 || em[k-tLen-1] != 0 ||
		!bytes.Equal(em[k-tLen:k-len(hashed)], prefix) || !bytes.Equal(em[k-len(hashed):], hashed) {
		return rsa.ErrVerification
	}
	for _, b := range em[2 : k-tLen-1] {
		if b != 0xff {
			return rsa.ErrVerification
		}
	}
	return nil
}
