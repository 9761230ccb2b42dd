package authn

import (
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

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// countingVerifier is a Verifier that sleeps, counts and answers err.
type countingVerifier struct {
	calls atomic.Int64
	delay time.Duration
	err   error
}

func (v *countingVerifier) Verify(ctx context.Context, _ string) error {
	v.calls.Add(1)
	select {
	case <-time.After(v.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return v.err
}

// memUsers is a map-backed UserStore and UserFetcher.
type memUsers struct {
	mu       sync.Mutex
	db       map[string]models.User
	remote   map[string]models.User
	fetches  atomic.Int64
	fetchErr error
}

func newMemUsers() *memUsers {
	return &memUsers{db: map[string]models.User{}, remote: map[string]models.User{}}
}

func (m *memUsers) UserByKey(_ context.Context, k models.UserKey) (models.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.db[k.String()]
	if !ok {
		return models.User{}, models.ErrNotFound
	}
	return u, nil
}

func (m *memUsers) UpsertUser(_ context.Context, u models.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.db[u.Key().String()]; ok {
		u.TokensValidAfter = old.TokensValidAfter // as the real upsert: never overwritten
	}
	m.db[u.Key().String()] = u
	return nil
}

func (m *memUsers) SetTokensValidAfter(_ context.Context, k models.UserKey, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.db[k.String()]
	if !ok {
		u = models.User{Issuer: k.Issuer, ID: k.ID}
	}
	t = t.UTC().Truncate(time.Second)
	u.TokensValidAfter = &t
	m.db[k.String()] = u
	return nil
}

func (m *memUsers) SetActiveByKey(_ context.Context, k models.UserKey, active bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.db[k.String()]
	if !ok {
		return models.ErrNotFound
	}
	u.IsActive = active
	m.db[k.String()] = u
	return nil
}

func (m *memUsers) FetchUser(_ context.Context, _, id string, now time.Time) (models.User, error) {
	m.fetches.Add(1)
	time.Sleep(10 * time.Millisecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fetchErr != nil {
		return models.User{}, m.fetchErr
	}
	u, ok := m.remote[id]
	if !ok {
		return models.User{}, models.ErrUserRejected
	}
	u.FetchedAt = now
	return u, nil
}

func testConfig() Config {
	return Config{UserIDClaim: "user_id", CacheSize: 1000, TTL: 30 * time.Second, NegativeTTL: 5 * time.Second,
		UserCacheSz: 100, RefreshAfter: 10 * time.Minute, CallTimeout: 5 * time.Second}
}

func token(t testing.TB, uid int, exp time.Time) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"token_type": "access", "user_id": uid, "exp": exp.Unix(), "jti": strconv.Itoa(uid) + exp.String(),
	}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newAuth(t testing.TB, v Verifier, us *memUsers) *Authenticator {
	a, err := New(testConfig(), Deps{Verifier: v, Fetcher: us, Store: us, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCoalescingAndTTL: ten concurrent misses share one call; the verdict
// lives cache.ttl; a shared call survives its first caller leaving.
func TestCoalescingAndTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &countingVerifier{delay: time.Second}
		us := newMemUsers()
		us.remote["1"] = models.User{ID: "1", IsActive: true}
		a := newAuth(t, v, us)
		tok := token(t, 1, time.Now().Add(time.Hour))

		// The first caller gives up at once; the others still get the answer.
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := a.Authenticate(ctx, tok); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled caller: %v", err)
			}
		})
		synctest.Wait()
		cancel()
		var ok atomic.Int64
		for range 10 {
			wg.Go(func() {
				if _, err := a.Authenticate(t.Context(), tok); err == nil {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 10 || v.calls.Load() != 1 || us.fetches.Load() != 1 {
			t.Fatalf("ok=%d verify calls=%d fetches=%d, want 10, 1, 1", ok.Load(), v.calls.Load(), us.fetches.Load())
		}
		time.Sleep(31 * time.Second) // past cache.ttl
		if _, err := a.Authenticate(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		if v.calls.Load() != 2 {
			t.Fatalf("verify calls after ttl = %d, want 2", v.calls.Load())
		}
	})
}

// TestUnavailableIsNeverCached: an outage answer is not remembered.
func TestUnavailableIsNeverCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &countingVerifier{err: models.ErrAuthUnavailable}
		us := newMemUsers()
		us.remote["1"] = models.User{ID: "1", IsActive: true}
		a := newAuth(t, v, us)
		tok := token(t, 1, time.Now().Add(time.Hour))
		for range 3 {
			if _, err := a.Authenticate(t.Context(), tok); !errors.Is(err, models.ErrAuthUnavailable) {
				t.Fatalf("err %v", err)
			}
		}
		if v.calls.Load() != 3 {
			t.Fatalf("calls %d, want 3", v.calls.Load())
		}
		v.err = nil
		if _, err := a.Authenticate(t.Context(), tok); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})
}

// TestUnknownUserIsRefused: a valid token whose user the auth service does
// not know is refused as not found, and nothing is mirrored.
func TestUnknownUserIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		us := newMemUsers()
		a := newAuth(t, &countingVerifier{}, us)
		_, err := a.Authenticate(t.Context(), token(t, 9, time.Now().Add(time.Hour)))
		if !errors.Is(err, models.ErrUserRejected) {
			t.Fatalf("err %v", err)
		}
		if len(us.db) != 0 {
			t.Fatal("an unknown user was mirrored")
		}
	})
}

// BenchmarkAuthenticateWarm: token and user cached.
func BenchmarkAuthenticateWarm(b *testing.B) {
	us := newMemUsers()
	us.remote["1"] = models.User{ID: "1", IsActive: true, Email: "a@x"}
	a := newAuth(b, &countingVerifier{}, us)
	tok := token(b, 1, time.Now().Add(time.Hour))
	if _, err := a.Authenticate(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
