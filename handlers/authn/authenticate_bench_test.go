package authn

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// BenchmarkAuthenticateWarmMany: the warm path under load row 5's mix:
// 10 000 tokens of 1 000 users (token i belongs to user i mod 1 000), every
// verdict and user cached before the timer starts, requests in a fixed
// random order, so the caches are hit all over rather than at one entry.
// cache.ttl and users.refresh_after are an hour, as in the load test: under
// valgrind the setup alone takes longer than the default 30 s, and expired
// verdicts (or refresh-ahead) would make the count depend on the clock.
func BenchmarkAuthenticateWarmMany(b *testing.B) {
	w, err := warmMany()
	if err != nil {
		b.Fatal(err)
	}
	a, raws := w.a, w.raws
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := a.Authenticate(ctx, raws[i%len(raws)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// warmMany is BenchmarkAuthenticateWarmMany's authenticator with every
// verdict and user cached, and its tokens in request order; built once, so
// that however often the benchmark function is run its setup is counted
// once (callgrind: Ir per request is the difference of two runs).
var warmMany = sync.OnceValues(func() (warmSetup, error) {
	const users, tokens = 1000, 10000
	us := newMemUsers()
	now := time.Now()
	for i := range users {
		id := strconv.Itoa(i + 1)
		us.db[id] = models.User{ID: id, IsActive: true, Email: "u" + id + "@x", FetchedAt: now}
	}
	cfg := testConfig()
	cfg.CacheSize, cfg.UserCacheSz = 100000, 10000
	cfg.TTL, cfg.RefreshAfter = time.Hour, time.Hour
	a, err := New(cfg, Deps{Verifier: &countingVerifier{}, Fetcher: us, Store: us, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now})
	if err != nil {
		return warmSetup{}, err
	}
	raws := make([]string, tokens)
	for i := range raws {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"token_type": "access", "user_id": i%users + 1, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "t" + strconv.Itoa(i),
		}).SignedString([]byte("k"))
		if err != nil {
			return warmSetup{}, err
		}
		raws[i] = s
		if _, err := a.Authenticate(context.Background(), s); err != nil {
			return warmSetup{}, err
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(raws), func(i, j int) { raws[i], raws[j] = raws[j], raws[i] })
	return warmSetup{a, raws}, nil
})

type warmSetup struct {
	a    *Authenticator
	raws []string
}

// TestAuthenticateWarmDoesNotAllocate: a request whose verdict and user are
// cached allocates nothing (the token's cache key, for one, must not move
// to the heap).
func TestAuthenticateWarmDoesNotAllocate(t *testing.T) {
	us := newMemUsers()
	us.remote["1"] = models.User{ID: "1", IsActive: true}
	a := newAuth(t, &countingVerifier{}, us)
	tok := token(t, 1, time.Now().Add(time.Hour))
	if _, err := a.Authenticate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() {
		if _, err := a.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per warm request, want 0", n)
	}
}
