package tests

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// sharedSecretEnv holds the shared cache's secret in these tests.
const sharedSecretEnv = "JWTGATE_TEST_REDIS_SECRET"

// sharedConfig is replicaConfig with the shared verdict cache on redisURL
// under prefix.
func sharedConfig(dsn, redisURL, prefix string) string {
	return strings.Replace(replicaConfig(dsn, "10m", true), "  revoke_on_logout: true\n", `  revoke_on_logout: true
  cache:
    redis_url: "`+redisURL+`"
    redis_secret: "env:`+sharedSecretEnv+`"
    redis_prefix: "`+prefix+`"
`, 1)
}

// testRedis is a client of the machine's Redis and a key prefix of this
// test's own, whose keys are deleted in t.Cleanup.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DisableIdentity: true})
	prefix := "jwtgate-test:" + strings.ToLower(rand.Text()[:10]) + ":"
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("Redis at 127.0.0.1:6379: %v (run tests/setup.sh)", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return rdb, prefix
}

// sharedKey is the Redis key of a token's verdict.
func sharedKey(prefix, token string) string {
	sum := sha256.Sum256([]byte(token))
	return prefix + hex.EncodeToString(sum[:])
}

// TestSharedCacheReplicas: two replicas on one PostgreSQL database and
// one Redis. A token verified on A costs B no call home; a logout or a
// user revoke on A is refused on B; entries B cannot trust are ignored.
func TestSharedCacheReplicas(t *testing.T) {
	t.Setenv(sharedSecretEnv, "replicas-share-this-secret-0123456789abcdef")
	dsn := pgDatabase(t)
	rdb, prefix := testRedis(t)
	fa, aliceID := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	// A generous redis_timeout: these assertions count calls home, and the
	// default 50ms can pass on a machine busy with the other test packages
	// (a timed-out write is then a call home on B, by design).
	cfg := strings.Replace(sharedConfig(dsn, "redis://127.0.0.1:6379/0", prefix), "    redis_prefix:", "    redis_timeout: 2s\n    redis_prefix:", 1)
	a := startGateway(t, cfg, fa.URL(), up.URL, nil)
	b := startGateway(t, cfg, fa.URL(), up.URL, nil)
	bMetrics := miscMetricsURL(t, b)
	verifies := func() int64 { return fa.Calls(fakeauth.PathVerify) }
	ok := func(gw *gateway, token, step string) {
		t.Helper()
		if r := get(t, gw.URL+"/api/x", token); r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", step, r.Status, r.Body)
		}
	}

	t.Run("verified on A, no call home on B", func(t *testing.T) {
		access, _ := fa.IssuePair(aliceID)
		before := verifies()
		ok(a, access, "A")
		ok(b, access, "B")
		ok(b, access, "B again")
		if n := verifies() - before; n != 1 {
			t.Fatalf("verify calls = %d, want 1 (A's; B took A's verdict from Redis)", n)
		}
		if h := scrape(t, bMetrics).get("jwtgate_shared_cache_hits_total"); h != 1 {
			t.Fatalf("B's shared cache hits = %v, want 1", h)
		}
		if ttl := rdb.PTTL(t.Context(), sharedKey(prefix, access)).Val(); ttl <= 0 || ttl > 30*time.Second {
			t.Fatalf("the verdict's PTTL in Redis = %s, want within auth.cache.ttl (30s)", ttl)
		}
	})

	t.Run("login through A, no call home on B", func(t *testing.T) {
		access, _ := tokens(t, login(t, a.URL, "alice@example.com", "alice-pw"))
		before := verifies()
		ok(b, access, "B after a login through A")
		if n := verifies() - before; n != 0 {
			t.Fatalf("verify calls = %d, want 0 (A cached the login's access token in Redis too)", n)
		}
	})

	t.Run("logout on A is refused on B and leaves Redis", func(t *testing.T) {
		access, refresh := fa.IssuePair(aliceID)
		ok(a, access, "A before logout")
		if rdb.Exists(t.Context(), sharedKey(prefix, access)).Val() != 1 {
			t.Fatal("no verdict in Redis after A verified the token")
		}
		body := fmt.Sprintf(`{"refresh":%q,"access":%q}`, refresh, access)
		if r := call(t, http.MethodPost, a.URL+"/auth/token/blacklist/", "application/json", body); r.Status != http.StatusOK {
			t.Fatalf("logout via A: %d %s", r.Status, r.Body)
		}
		if rdb.Exists(t.Context(), sharedKey(prefix, access)).Val() != 0 {
			t.Fatal("the logged-out token's verdict is still in Redis")
		}
		eventually(t, time.Second, func() string {
			if r := get(t, b.URL+"/api/x", access); r.Status != http.StatusUnauthorized {
				return fmt.Sprintf("B answers %d for the logged-out token", r.Status)
			}
			return ""
		})
	})

	t.Run("user revoke on A is refused on B", func(t *testing.T) {
		access, _ := fa.IssuePair(aliceID)
		ok(a, access, "A before the revoke")
		// The cutoff is whole seconds (SimpleJWT's iat): revoke in the
		// second after the token's.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		if err := a.GW.Auth.RevokeUser(t.Context(), models.UserKey{ID: fmt.Sprint(aliceID)}, "test"); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Second, func() string {
			if r := get(t, b.URL+"/api/x", access); r.Status != http.StatusUnauthorized {
				return fmt.Sprintf("B answers %d for a token issued before its user's cutoff", r.Status)
			}
			return ""
		})
	})

	t.Run("entries B cannot trust", func(t *testing.T) {
		// A verdict sealed with another secret: a third replica that does
		// not share the secret, writing under the same prefix.
		t.Setenv(sharedSecretEnv, "some-other-secret-that-is-long-enough-0123")
		stranger := startGateway(t, cfg, fa.URL(), up.URL, nil)
		genuine, _ := fa.IssuePair(aliceID) // verified by A: a genuine sealed verdict in Redis
		ok(a, genuine, "A")
		sealed := rdb.Get(t.Context(), sharedKey(prefix, genuine)).Val()
		tests := []struct {
			name   string
			plant  func(token string)
			reason string
		}{
			{"written by a replica without the secret", func(token string) { ok(stranger, token, "stranger") }, "bad_mac"},
			{"another token's verdict copied to this key", func(token string) {
				rdb.Set(t.Context(), sharedKey(prefix, token), sealed, time.Minute)
			}, "bad_mac"},
			{"garbage", func(token string) {
				rdb.Set(t.Context(), sharedKey(prefix, token), "\x01{\"user_id\":1,\"ok\":true}", time.Minute)
			}, "bad_mac"},
			{"an old format version", func(token string) {
				rdb.Set(t.Context(), sharedKey(prefix, token), "\x00"+sealed[1:], time.Minute)
			}, "version"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				access, _ := fa.IssuePair(aliceID)
				tt.plant(access)
				misses := scrape(t, bMetrics).get("jwtgate_shared_cache_misses_total", "reason="+tt.reason)
				before := verifies()
				ok(b, access, "B")
				if n := verifies() - before; n != 1 {
					t.Fatalf("verify calls = %d, want 1: B must not trust the entry", n)
				}
				if m := scrape(t, bMetrics).get("jwtgate_shared_cache_misses_total", "reason="+tt.reason) - misses; m != 1 {
					t.Fatalf("misses with reason %s = %v, want 1", tt.reason, m)
				}
			})
		}
	})
}

// TestSharedCacheRedisDown: with Redis at a closed port, or at a port that
// accepts connections and never answers, requests are still answered
// through calls home: 200, never 503, each within a bound.
func TestSharedCacheRedisDown(t *testing.T) {
	t.Setenv(sharedSecretEnv, "replicas-share-this-secret-0123456789abcdef")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	fa, aliceID := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	for _, tt := range []struct{ name, addr string }{{"closed port", closedAddr}, {"silent port", silent.Addr().String()}} {
		t.Run(tt.name, func(t *testing.T) {
			gw := startGateway(t, sharedConfig(pgDatabase(t), "redis://"+tt.addr+"/0", "jwtgate-test:"), fa.URL(), up.URL, nil)
			var slowest time.Duration
			for i := range 20 {
				access, _ := fa.IssuePair(aliceID) // every request a new token: each one misses
				if i%2 == 1 {
					access, _ = tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw")) // a login writes to Redis
				}
				start := time.Now()
				r := get(t, gw.URL+"/api/x", access)
				slowest = max(slowest, time.Since(start))
				if r.Status != http.StatusOK {
					t.Fatalf("request %d: %d %s, want 200 through a call home", i, r.Status, r.Body)
				}
			}
			// One redis_timeout (50ms) at most per request, and only until
			// the circuit opens; the bound leaves room for a busy machine.
			if slowest > 2*time.Second {
				t.Fatalf("slowest request %s", slowest)
			}
			t.Logf("slowest of 20 requests with Redis down: %s", slowest.Round(time.Millisecond))
			if e := scrape(t, miscMetricsURL(t, gw)).get("jwtgate_shared_cache_errors_total", "op=get"); e < 1 || e > 5 {
				t.Fatalf("get errors = %v, want a few (the circuit skips Redis after a failure)", e)
			}
		})
	}
}

// TestSharedCacheNeedsRestart: a reload cannot turn the shared cache on
// (its client is built once): the change is logged and the gateway keeps
// serving as before, without Redis.
func TestSharedCacheNeedsRestart(t *testing.T) {
	t.Setenv(sharedSecretEnv, "replicas-share-this-secret-0123456789abcdef")
	dsn := pgDatabase(t)
	fa, aliceID := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	gw := startGateway(t, replicaConfig(dsn, "10m", true), fa.URL(), up.URL, nil)
	next := strings.NewReplacer("%AUTH%", fa.URL(), "%UPSTREAM%", up.URL).Replace(sharedConfig(dsn, "redis://127.0.0.1:6379/0", "jwtgate-test:"))
	if err := gw.GW.Reload(t.Context(), func() (models.Settings, error) {
		return models.LoadSettings(strings.NewReader(next), func(string) string { return "" })
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(gw.Logs.String(), "settings reload: auth.cache.redis_* changed; it needs a restart") {
		t.Fatalf("the change was not reported as needing a restart:\n%s", gw.Logs.String())
	}
	access, _ := fa.IssuePair(aliceID)
	if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("after the reload: %d %s", r.Status, r.Body)
	}
	if gw.GW.Shared != nil {
		t.Fatal("a reload built a Redis client")
	}
}
