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
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"io"
	"math"
	"math/big"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
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
	m moduli
	// builds counts moduli built, for tests.
	builds atomic.Int64
}

// moduli maps weak.Pointer[rsa.PublicKey] to *rsaModulus, with the entry
// found last in front: with one signing key (a PEM key, or one JWK in
// use) every check finds it there, without weak.Make and the map lookup
// (~0.4k Ir of 1.1k per check). Clear and Delete drop it too.
type moduli struct {
	sync.Map
	last atomic.Pointer[rsaModulus]
}

// Clear forgets every modulus.
func (m *moduli) Clear() {
	m.last.Store(nil)
	m.Map.Clear()
}

// Delete forgets w's modulus (its key was collected).
func (m *moduli) Delete(w weak.Pointer[rsa.PublicKey]) {
	if e := m.last.Load(); e != nil && e.key == w {
		m.last.CompareAndSwap(e, nil)
	}
	m.Map.Delete(w)
}

// rsaModulus is one key's precomputed modulus.
type rsaModulus struct {
	key weak.Pointer[rsa.PublicKey] // the key, weakly: the front entry keeps no dropped key alive
	n   *big.Int                    // a copy of the key's N: a key changed in place is noticed
	e   int
	m   *bigmod.Modulus
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
	// A weak pointer's Value is nil once its key is collected, even if a
	// new key is allocated at the same address: the front entry never
	// matches another key. N and E are compared as in the map's case.
	if e := c.m.last.Load(); e != nil && e.key.Value() == pub && e.e == pub.E && e.n.Cmp(pub.N) == 0 {
		return e.m
	}
	w := weak.Make(pub)
	if v, ok := c.m.Load(w); ok {
		if e := v.(*rsaModulus); e.e == pub.E && e.n.Cmp(pub.N) == 0 {
			c.m.last.Store(e)
			return e.m
		}
	}
	m, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil
	}
	c.builds.Add(1)
	e := &rsaModulus{key: w, n: new(big.Int).Set(pub.N), e: pub.E, m: m}
	if _, loaded := c.m.Swap(w, e); !loaded {
		runtime.AddCleanup(pub, func(w weak.Pointer[rsa.PublicKey]) { c.m.Delete(w) }, w)
	}
	c.m.last.Store(e)
	return m
}

// verify is jwt.SigningMethodRSA.Verify (RS256, RS384, RS512) with pub's
// modulus precomputed once: the same hash of signed, the same result and
// the same errors (rsa.ErrVerification for any bad signature).
func (c *rsaKeys) verify(method *jwt.SigningMethodRSA, signed string, sig []byte, pub *rsa.PublicKey) error {
	if !method.Hash.Available() {
		return jwt.ErrHashUnavailable
	}
	var buf [64]byte
	hashed := digest(method.Hash, signed, &buf)
	if prefix, ok := pkcs1DigestInfo[method.Hash]; ok {
		if m := c.modulus(pub); m != nil {
			return verifyPKCS1v15(m, pub.E, prefix, hashed, sig)
		}
	}
	return rsa.VerifyPKCS1v15(pub, method.Hash, slices.Clone(hashed), sig) // a copy: buf stays on the stack
}

// digest returns h of s (h available), in buf when it fits. SHA-256,
// SHA-384 and SHA-512 are summed on s's bytes in place with no digest on
// the heap: h.New, io.WriteString's copy of s and h.Sum took three
// allocations (~0.4 KB) and ~1.5k Ir per RS256 check.
func digest(h crypto.Hash, s string, buf *[64]byte) []byte {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	switch h {
	case crypto.SHA256:
		*(*[sha256.Size]byte)(buf[:]) = sha256.Sum256(b)
		return buf[:sha256.Size]
	case crypto.SHA384:
		*(*[sha512.Size384]byte)(buf[:]) = sha512.Sum384(b)
		return buf[:sha512.Size384]
	case crypto.SHA512:
		*buf = sha512.Sum512(b)
		return buf[:]
	}
	d := h.New()
	_, _ = io.WriteString(d, s)
	return d.Sum(nil)
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
	var buf [512]byte
	em := emBytes(bigmod.NewNat().ExpShortVarTime(s, uint(e), m), m, &buf)

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
	if !allFF(em[2 : k-tLen-1]) {
		return rsa.ErrVerification
	}
	return nil
}

// emBytes is x.Bytes(m) (x below m: k big-endian bytes) written into buf
// when it fits (keys up to 4096 bits): Bytes allocates k bytes and writes
// them one at a time (~3.7k Ir and 256 B per 2048-bit check), this writes
// a limb at a time. Anything else goes to Bytes itself.
func emBytes(x *bigmod.Nat, m *bigmod.Modulus, buf *[512]byte) []byte {
	limbs, k := x.Bits(), m.Size()
	n := len(limbs) * 8
	if bits.UintSize != 64 || n > len(buf) || n < k {
		return x.Bytes(m)
	}
	b := buf[:n]
	for i, l := range limbs { // little-endian limbs
		binary.BigEndian.PutUint64(b[n-8*(i+1):], uint64(l))
	}
	for _, c := range b[:n-k] {
		if c != 0 { // x is not below m: Bytes' own answer (a panic)
			return x.Bytes(m)
		}
	}
	return b[n-k:]
}

// allFF reports whether every byte of b is 0xFF, eight at a time (a byte
// at a time was ~1.2k Ir for a 2048-bit key's ~200-byte run).
func allFF(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != math.MaxUint64 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}
