package authn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"jwtgate/models"
	"jwtgate/remote"
)

// memShared is a SharedStore in memory: what Redis would hold, with
// counts, an optional delay on Get and an optional failure.
type memShared struct {
	mu    sync.Mutex
	m     map[[32]byte][]byte
	exp   map[[32]byte]time.Time
	gets  atomic.Int64
	sets  atomic.Int64
	dels  atomic.Int64
	delay time.Duration
	err   error
}

func newMemShared() *memShared {
	return &memShared{m: map[[32]byte][]byte{}, exp: map[[32]byte]time.Time{}}
}

func (s *memShared) Get(_ context.Context, key [32]byte) ([]byte, error) {
	s.gets.Add(1)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if s.err != nil {
		return nil, s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.m[key]), nil
}

func (s *memShared) Set(_ context.Context, key [32]byte, val []byte, expires time.Time) error {
	if s.err != nil {
		return s.err
	}
	s.sets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key], s.exp[key] = bytes.Clone(val), expires
	return nil
}

func (s *memShared) Del(_ context.Context, keys ...[32]byte) error {
	s.dels.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.m, k)
	}
	return nil
}

func (s *memShared) has(key [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[key]
	return ok
}

func (s *memShared) put(key [32]byte, val []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = val
}

// sharedObs counts the shared cache's events.
type sharedObs struct {
	nopObserver
	mu     sync.Mutex
	hits   int
	misses map[string]int
	writes int
}

func (o *sharedObs) SharedCacheHit() { o.mu.Lock(); o.hits++; o.mu.Unlock() }

func (o *sharedObs) SharedCacheWrite() { o.mu.Lock(); o.writes++; o.mu.Unlock() }

func (o *sharedObs) SharedCacheMiss(r string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.misses == nil {
		o.misses = map[string]int{}
	}
	o.misses[r]++
}

func (o *sharedObs) missed(r string) int { o.mu.Lock(); defer o.mu.Unlock(); return o.misses[r] }

const testSharedSecret = "replicas-share-this-secret-0123456789abcdef"

// sharedAuth is an authenticator (one replica) on the shared store s.
func sharedAuth(t testing.TB, v Verifier, us *memUsers, s SharedStore, secret string) (*Authenticator, *sharedObs) {
	t.Helper()
	cfg := testConfig()
	cfg.Shared = true
	obs := &sharedObs{}
	a, err := New(cfg, Deps{Verifier: v, Fetcher: us, Store: us, Observer: obs, Shared: &Shared{Store: s, Secret: []byte(secret)},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a, obs
}

func precheck(t testing.TB, raw string) models.Token {
	t.Helper()
	tok, err := models.PrecheckToken(raw, "user_id", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSharedCodec: a sealed verdict opens under its key and secret only;
// anything else is a miss with the reason the metrics count.
func TestSharedCodec(t *testing.T) {
	raw := token(t, 7, time.Now().Add(time.Hour))
	tok := precheck(t, raw)
	key, other := TokenKey(raw), TokenKey(raw+"x")
	mk := sharedMACKey([]byte(testSharedSecret))
	expires := time.Now().Add(30 * time.Second)
	good := sealVerdict(mk, key, tok, expires)

	v, err := openVerdict(mk, key, good)
	if err != nil || !v.describes(tok) || v.expires != expires.UnixNano() {
		t.Fatalf("round trip: %+v, %v", v, err)
	}
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	otherVersion := bytes.Clone(good)
	otherVersion[0] = sharedVersion + 1
	// A body that authenticates but does not decode: a string length
	// running past the end, and bytes after the last string.
	body := good[:len(good)-32]
	overrun := sharedMAC(mk, key, append(bytes.Clone(body[:57]), 0x7f))
	trailing := sharedMAC(mk, key, append(bytes.Clone(body), 0))
	tests := []struct {
		name string
		key  [32]byte
		mk   [32]byte
		val  []byte
		want string
	}{
		{"MAC byte flipped", key, mk, flip(len(good) - 1), SharedBadMAC},
		{"expires extended", key, mk, flip(20), SharedBadMAC},
		{"user id changed", key, mk, flip(len(good) - 33), SharedBadMAC},
		{"copied to another token's key", other, mk, good, SharedBadMAC},
		{"sealed with another secret", key, sharedMACKey([]byte("another-secret-of-enough-length-0123456789")), good, SharedBadMAC},
		{"garbage", key, mk, []byte("\x01not a verdict at all"), SharedBadMAC},
		{"empty", key, mk, nil, SharedVersion},
		{"old version", key, mk, append([]byte{0}, good[1:]...), SharedVersion},
		{"newer version", key, mk, otherVersion, SharedVersion},
		{"JSON", key, mk, []byte(`{"user_id":"7","exp":9999999999}`), SharedVersion},
		{"string past the end", key, mk, overrun, SharedGarbled},
		{"trailing bytes", key, mk, trailing, SharedGarbled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openVerdict(tt.mk, tt.key, tt.val)
			var got errShared
			if !errors.As(err, &got) || string(got) != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
		})
	}
	// A genuine verdict about another token (sealed for this key by a
	// replica with the secret, say a bug) does not describe this token.
	otherTok := precheck(t, token(t, 8, time.Now().Add(time.Hour)))
	v, err = openVerdict(mk, key, sealVerdict(mk, key, otherTok, expires))
	if err != nil || v.describes(tok) {
		t.Fatalf("another token's verdict: err %v, describes %v; want nil, false", err, v.describes(tok))
	}
}

// TestSharedMACKey: the MAC key is derived from the secret (never the
// secret itself), the same on every replica, different per secret.
func TestSharedMACKey(t *testing.T) {
	a, b := sharedMACKey([]byte(testSharedSecret)), sharedMACKey([]byte(testSharedSecret))
	c := sharedMACKey([]byte(testSharedSecret + "!"))
	if a != b || a == c || bytes.Contains([]byte(testSharedSecret), a[:8]) {
		t.Fatalf("derived keys: %x %x %x", a, b, c)
	}
	if _, err := New(testConfig(), Deps{Shared: &Shared{Store: newMemShared(), Secret: []byte("short")}}); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
}

// TestSharedSecondLevel: two replicas on one shared store.
func TestSharedSecondLevel(t *testing.T) {
	us := newMemUsers()
	for _, id := range []string{"1", "2", "3", "4"} {
		us.remote[id] = models.User{ID: id, IsActive: true}
	}
	t.Run("verified on A costs B no call home", func(t *testing.T) {
		s := newMemShared()
		va, vb := &countingVerifier{}, &countingVerifier{}
		a, _ := sharedAuth(t, va, us, s, testSharedSecret)
		b, bObs := sharedAuth(t, vb, us, s, testSharedSecret)
		raw := token(t, 1, time.Now().Add(time.Hour))
		if _, err := a.Authenticate(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := b.Authenticate(t.Context(), raw); err != nil {
				t.Fatal(err)
			}
		}
		if va.calls.Load() != 1 || vb.calls.Load() != 0 || bObs.hits != 1 || s.gets.Load() != 2 {
			t.Fatalf("A calls %d, B calls %d, B shared hits %d, gets %d; want 1, 0, 1, 2 (then B's own cache)",
				va.calls.Load(), vb.calls.Load(), bObs.hits, s.gets.Load())
		}
	})
	t.Run("login on A costs B no call home", func(t *testing.T) {
		s := newMemShared()
		vb := &countingVerifier{}
		a, _ := sharedAuth(t, &countingVerifier{}, us, s, testSharedSecret)
		b, _ := sharedAuth(t, vb, us, s, testSharedSecret)
		raw := token(t, 2, time.Now().Add(time.Hour))
		if !a.Warm(t.Context(), raw) {
			t.Fatal("not warmed")
		}
		if _, err := b.Authenticate(t.Context(), raw); err != nil || vb.calls.Load() != 0 {
			t.Fatalf("B: %v, %d calls home; want nil, 0", err, vb.calls.Load())
		}
	})
	t.Run("revoked tokens do not come back from the shared cache", func(t *testing.T) {
		s := newMemShared()
		a, _ := sharedAuth(t, &countingVerifier{}, us, s, testSharedSecret)
		b, _ := sharedAuth(t, &countingVerifier{}, us, s, testSharedSecret)
		a.st().cfg.RevokeOnLogout = true
		raw := token(t, 3, time.Now().Add(time.Hour))
		key := TokenKey(raw)
		if _, err := a.Authenticate(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
		sealed, _ := s.Get(t.Context(), key)
		a.Revoke(t.Context(), raw)
		if s.has(key) {
			t.Fatal("the logged-out token's verdict is still in the shared store")
		}
		// B heard of the logout (the peers' hint); someone replays the
		// old sealed value into Redis: still refused.
		b.RevokeKey(precheck(t, raw).Key, time.Now().Add(time.Hour))
		s.put(key, sealed)
		if _, err := b.Authenticate(t.Context(), raw); !errors.Is(err, models.ErrTokenInvalid) {
			t.Fatalf("B with a replayed verdict of a revoked token: %v, want refused", err)
		}
		// A user cutoff after the token's iat refuses it too: the verdict
		// from the shared store goes through the same user checks.
		c, _ := sharedAuth(t, &countingVerifier{}, us, s, testSharedSecret)
		raw4 := token(t, 4, time.Now().Add(time.Hour))
		if _, err := a.Authenticate(t.Context(), raw4); err != nil {
			t.Fatal(err)
		}
		if err := a.RevokeUser(t.Context(), models.UserKey{ID: "4"}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Authenticate(t.Context(), raw4); !errors.Is(err, models.ErrTokenInvalid) {
			t.Fatalf("C after the user's cutoff: %v, want refused", err)
		}
	})
	t.Run("a refusal deletes the shared verdict", func(t *testing.T) {
		s := newMemShared()
		v := &countingVerifier{}
		a, _ := sharedAuth(t, v, us, s, testSharedSecret)
		raw := token(t, 1, time.Now().Add(time.Hour))
		key := TokenKey(raw)
		// A verdict in its last 20%: a revalidation (refresh-ahead) does
		// not take it, it asks the auth service, which now refuses.
		s.put(key, sealVerdict(sharedMACKey([]byte(testSharedSecret)), key, precheck(t, raw), time.Now().Add(2*time.Second)))
		v.err = models.ErrTokenInvalid
		if _, err := a.Token(context.WithValue(t.Context(), revalidateKey{}, true), raw); err == nil || v.calls.Load() != 1 {
			t.Fatalf("revalidation: %v after %d calls home, want refused after 1", err, v.calls.Load())
		}
		if s.has(key) {
			t.Fatal("a token the auth service refused is still in the shared store")
		}
	})
	t.Run("forged entries are not trusted", func(t *testing.T) {
		s := newMemShared()
		v := &countingVerifier{}
		a, obs := sharedAuth(t, v, us, s, testSharedSecret)
		raw := token(t, 1, time.Now().Add(time.Hour))
		forged, _ := sharedAuth(t, &countingVerifier{}, us, s, "an-attacker-guessed-this-secret-0123456789")
		if _, err := forged.Token(t.Context(), raw); err != nil { // writes a verdict with the wrong secret
			t.Fatal(err)
		}
		if _, err := a.Token(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
		if v.calls.Load() != 1 || obs.missed(SharedBadMAC) != 1 {
			t.Fatalf("calls home %d, bad_mac misses %d; want 1, 1", v.calls.Load(), obs.missed(SharedBadMAC))
		}
	})
	t.Run("expired entries are misses", func(t *testing.T) {
		s := newMemShared()
		v := &countingVerifier{}
		a, obs := sharedAuth(t, v, us, s, testSharedSecret)
		raw := token(t, 1, time.Now().Add(time.Hour))
		key := TokenKey(raw)
		s.put(key, sealVerdict(sharedMACKey([]byte(testSharedSecret)), key, precheck(t, raw), time.Now().Add(-time.Second)))
		if _, err := a.Token(t.Context(), raw); err != nil || v.calls.Load() != 1 || obs.missed(SharedExpired) != 1 {
			t.Fatalf("err %v, calls %d, expired misses %d; want nil, 1, 1", err, v.calls.Load(), obs.missed(SharedExpired))
		}
	})
	t.Run("a failing store costs a call home, never an error", func(t *testing.T) {
		s := newMemShared()
		s.err = errors.New("connection refused")
		v := &countingVerifier{}
		a, obs := sharedAuth(t, v, us, s, testSharedSecret)
		raw := token(t, 1, time.Now().Add(time.Hour))
		if _, err := a.Authenticate(t.Context(), raw); err != nil || v.calls.Load() != 1 || obs.missed(SharedUnavailable) != 1 {
			t.Fatalf("err %v, calls %d, unavailable misses %d; want nil, 1, 1", err, v.calls.Load(), obs.missed(SharedUnavailable))
		}
	})
}

// TestSharedCoalesced: concurrent misses for one token on one replica
// make one lookup in the shared store and, on its miss, one call home.
func TestSharedCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		us := newMemUsers()
		us.remote["1"] = models.User{ID: "1", IsActive: true}
		s := newMemShared()
		s.delay = 10 * time.Millisecond
		v := &countingVerifier{delay: 100 * time.Millisecond}
		a, _ := sharedAuth(t, v, us, s, testSharedSecret)
		b, bObs := sharedAuth(t, &countingVerifier{}, us, s, testSharedSecret)
		raw := token(t, 1, time.Now().Add(time.Hour))
		for _, r := range []*Authenticator{a, b} { // A misses both levels; B finds A's verdict
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if _, err := r.Authenticate(t.Context(), raw); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		if s.gets.Load() != 2 || v.calls.Load() != 1 || s.sets.Load() != 1 || bObs.hits != 1 {
			t.Fatalf("gets %d, calls home %d, sets %d, B hits %d; want 2, 1, 1, 1", s.gets.Load(), v.calls.Load(), s.sets.Load(), bObs.hits)
		}
	})
}

// BenchmarkSharedLevels: what a miss of the in-process cache costs when
// the shared cache in the real Redis (127.0.0.1:6379) has the verdict,
// beside an in-process hit (the warm path, unchanged by the shared cache).
func BenchmarkSharedLevels(b *testing.B) {
	c := models.DefaultSettings().Auth.Cache
	c.RedisURL, c.RedisPrefix = "redis://127.0.0.1:6379/0", "jwtgate-bench:"+strconv.FormatInt(time.Now().UnixNano(), 36)+":"
	sc, err := remote.NewSharedCache(c, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sc.Close() })
	if err := sc.Ping(b.Context()); err != nil {
		b.Skipf("no Redis: %v", err)
	}
	us := newMemUsers()
	a, _ := sharedAuth(b, &countingVerifier{}, us, sc, testSharedSecret)
	raw := token(b, 1, time.Now().Add(time.Hour))
	key := TokenKey(raw)
	if _, err := a.Token(b.Context(), raw); err != nil { // verified, stored in both levels
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sc.Del(context.Background(), key) })
	b.Run("in-process hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Token(b.Context(), raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shared hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a.tokens.Remove(key) // a miss of the first level
			if _, err := a.Token(b.Context(), raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzOpenVerdict: whatever Redis holds, opening it never panics, and
// only the sealed value opens.
func FuzzOpenVerdict(f *testing.F) {
	raw := token(f, 7, time.Now().Add(time.Hour))
	key := TokenKey(raw)
	mk := sharedMACKey([]byte(testSharedSecret))
	tok, err := models.PrecheckToken(raw, "user_id", 0, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	good := sealVerdict(mk, key, tok, time.Now().Add(time.Minute))
	f.Add(good)
	f.Add([]byte{sharedVersion})
	f.Add([]byte("\x01garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := openVerdict(mk, key, b)
		if err == nil && (!bytes.Equal(b, good) || !v.describes(tok)) {
			// A value other than ours opened: only possible with a MAC
			// collision, or a bug that skips the check.
			t.Fatalf("an unsealed value opened: %x", b)
		}
	})
}
