package authn

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/bigmod"
	"github.com/golang-jwt/jwt/v5"

	_ "crypto/sha1" // SHA-1 for digest's fallback case
)

// TestEMBytesMatchesBytes: emBytes gives x.Bytes(m) for moduli of every
// byte and limb alignment, inside the stack buffer and past it (Bytes
// itself), for 0, 1, m-1 and random values below m.
func TestEMBytesMatchesBytes(t *testing.T) {
	for _, bitLen := range []int{1024, 1025, 1031, 1032, 1040, 2047, 2048, 2056, 3072, 4095, 4096, 4097, 8192} {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bitLen-1)))
		if err != nil {
			t.Fatal(err)
		}
		n.SetBit(n, bitLen-1, 1).SetBit(n, 0, 1) // bitLen bits, odd
		m, err := bigmod.NewModulus(n.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		nMinus1 := new(big.Int).Sub(n, big.NewInt(1))
		values := []*big.Int{big.NewInt(0), big.NewInt(1), nMinus1}
		for range 20 {
			v, err := rand.Int(rand.Reader, n)
			if err != nil {
				t.Fatal(err)
			}
			values = append(values, v)
		}
		for _, v := range values {
			x, err := bigmod.NewNat().SetBytes(v.Bytes(), m)
			if err != nil {
				t.Fatal(err)
			}
			var buf [512]byte
			if got, want := emBytes(x, m, &buf), x.Bytes(m); !bytes.Equal(got, want) {
				t.Fatalf("%d bits, x = %x: emBytes %x, Bytes %x", bitLen, v, got, want)
			}
		}
	}
}

// TestAllFF: allFF is true exactly when every byte is 0xFF, for every
// length around the 8-byte steps and any one byte changed.
func TestAllFF(t *testing.T) {
	for n := range 41 {
		b := bytes.Repeat([]byte{0xff}, n)
		if !allFF(b) {
			t.Fatalf("%d bytes of 0xFF: false", n)
		}
		for i := range n {
			for _, c := range []byte{0x00, 0x7f, 0xfe} {
				b[i] = c
				if allFF(b) {
					t.Fatalf("%d bytes, byte %d = %#x: true", n, i, c)
				}
			}
			b[i] = 0xff
		}
	}
}

// TestDigestMatchesHashNew: digest gives h.New() written and summed, for
// the summed-in-place hashes and a fallback one, over empty and long text.
func TestDigestMatchesHashNew(t *testing.T) {
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA1} {
		for _, s := range []string{"", "a", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiJ9", strings.Repeat("x.", 1000)} {
			d := h.New()
			d.Write([]byte(s))
			var buf [64]byte
			if got, want := digest(h, s, &buf), d.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("%v of %q: %x, want %x", h, s, got, want)
			}
		}
	}
}

// TestRSAKeysFrontEntry: the entry found last answers the next check of
// its key without the map, but never for another key, a key changed in
// place (N or E), or after Clear; results always match crypto/rsa's.
func TestRSAKeysFrontEntry(t *testing.T) {
	ks := rsaKeysBySize(t)
	k1, k2 := ks[2048], ks[3072]
	const msg = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiJ9"
	m := jwt.SigningMethodRS256
	sig := func(k *rsa.PrivateKey) []byte {
		s, err := rsa.SignPKCS1v15(nil, k, m.Hash, sum(m, msg))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sig1, sig2 := sig(k1), sig(k2)
	// Copies, N too: pub1 is changed in place below.
	pub1 := rsa.PublicKey{N: new(big.Int).Set(k1.N), E: k1.E}
	pub2 := rsa.PublicKey{N: new(big.Int).Set(k2.N), E: k2.E}
	c := newRSAKeys()
	check := func(step string, pub *rsa.PublicKey, s []byte, valid bool, builds int64) {
		t.Helper()
		got, want := c.verify(m, msg, s, pub), stdlibVerify(m, msg, s, pub)
		if !sameResult(got, want) || (got == nil) != valid {
			t.Fatalf("%s: got %v, crypto/rsa says %v, want valid=%v", step, got, want, valid)
		}
		if n := c.builds.Load(); n != builds {
			t.Fatalf("%s: %d moduli built, want %d", step, n, builds)
		}
		if e := c.m.last.Load(); fastPath(pub) && (e == nil || e.key.Value() != pub) {
			t.Fatalf("%s: the front entry is not the key just used", step)
		}
	}
	steps := []struct {
		name   string
		pub    *rsa.PublicKey
		sig    []byte
		valid  bool
		builds int64
		before func()
	}{
		{"first use", &pub1, sig1, true, 1, nil},
		{"again, from the front", &pub1, sig1, true, 1, nil},
		{"bad signature, from the front", &pub1, sig2, false, 1, nil},
		{"another key", &pub2, sig2, true, 2, nil},
		{"first key, from the map", &pub1, sig1, true, 2, nil},
		{"N changed in place to the other key's", &pub1, sig2, true, 3, func() { pub1.N.Set(k2.N) }},
		{"old signature under the changed N", &pub1, sig1, false, 3, nil},
		{"N changed back", &pub1, sig1, true, 4, func() { pub1.N.Set(k1.N) }},
		{"E changed in place", &pub1, sig1, false, 5, func() { pub1.E = 3 }},
		{"E changed back", &pub1, sig1, true, 6, func() { pub1.E = k1.E }},
		{"after Clear", &pub1, sig1, true, 7, func() { c.m.Clear() }},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		check(s.name, s.pub, s.sig, s.valid, s.builds)
	}
}

// TestRSAKeysFrontEntryDropped: a key used last is still collected, and
// its modulus leaves both the map and the front entry.
func TestRSAKeysFrontEntryDropped(t *testing.T) {
	k := rsaKeysBySize(t)[2048]
	m := jwt.SigningMethodRS256
	const msg = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiJ9"
	s, err := rsa.SignPKCS1v15(nil, k, m.Hash, sum(m, msg))
	if err != nil {
		t.Fatal(err)
	}
	c := newRSAKeys()
	func() {
		pub := &rsa.PublicKey{N: new(big.Int).Set(k.N), E: k.E}
		if err := c.verify(m, msg, s, pub); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for (c.rsaCached() > 0 || c.m.last.Load() != nil) && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n, e := c.rsaCached(), c.m.last.Load(); n != 0 || e != nil {
		t.Fatalf("after the key was dropped: %d moduli in the map, front entry %v", n, e)
	}
}

// TestRSAKeysConcurrent: checks with two keys at once from several
// goroutines all get crypto/rsa's answer (run with -race).
func TestRSAKeysConcurrent(t *testing.T) {
	ks := rsaKeysBySize(t)
	m := jwt.SigningMethodRS256
	const msg = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiJ9"
	keys := []*rsa.PrivateKey{ks[2048], ks[3072]}
	sigs := make([][]byte, len(keys))
	for i, k := range keys {
		s, err := rsa.SignPKCS1v15(nil, k, m.Hash, sum(m, msg))
		if err != nil {
			t.Fatal(err)
		}
		sigs[i] = s
	}
	c := newRSAKeys()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				k, s := (g+i)%2, (g+i/2)%2
				if err := c.verify(m, msg, sigs[s], &keys[k].PublicKey); (err == nil) != (k == s) {
					t.Errorf("key %d, signature %d: %v", k, s, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := c.builds.Load(); n < 2 {
		t.Fatalf("%d moduli built for two keys", n)
	}
}
