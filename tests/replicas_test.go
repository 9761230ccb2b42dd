package tests

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"jwtgate/tests/fakeauth"
)

// pgAdminDSN reaches the machine's PostgreSQL (tests/setup.sh starts it).
func pgAdminDSN() string {
	if dsn := os.Getenv("JWTGATE_TEST_PG"); dsn != "" {
		return dsn
	}
	return "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable"
}

// pgDatabase creates a fresh database for one test, dropped in t.Cleanup,
// and returns its DSN.
func pgDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, pgAdminDSN())
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (run tests/setup.sh)", pgAdminDSN(), err)
	}
	defer admin.Close(context.Background())
	name := "jwtgate_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, pgAdminDSN())
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	cfg, _ := pgx.ParseConfig(pgAdminDSN())
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, name)
}

// replicaConfig is a gateway on a shared PostgreSQL database.
func replicaConfig(dsn, refreshAfter string, revoke bool) string {
	return `
listen: "127.0.0.1:0"
auth_service:
  url: "%AUTH%"
  timeout: 2s
auth:
  revoke_on_logout: ` + fmt.Sprint(revoke) + `
throttle:
  login_rate: "off"
database:
  driver: postgres
  dsn: "` + dsn + `"
users:
  refresh_after: ` + refreshAfter + `
log:
  level: debug
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
`
}

func TestTwoReplicasOnPostgres(t *testing.T) {
	dsn := pgDatabase(t)
	fa, aliceID := newFake(t, fakeauth.Options{})
	users := []string{"alice@example.com"}
	for _, n := range []string{"bob", "carol", "dan"} {
		fa.AddUser(fakeauth.User{Email: n + "@example.com", Password: n + "-pw"})
		users = append(users, n+"@example.com")
	}
	up := startUpstream(t)
	// A re-checks users after a second; B would trust its copy for ten minutes.
	a := startGateway(t, replicaConfig(dsn, "1s", true), fa.URL(), up.URL, nil)
	b := startGateway(t, replicaConfig(dsn, "10m", true), fa.URL(), up.URL, nil)

	t.Run("concurrent logins through both", func(t *testing.T) {
		var failed atomic.Int64
		parallel(32, func(i int) {
			gw := []*gateway{a, b}[i%2]
			email := users[(i/2)%len(users)]
			pw := strings.TrimSuffix(email, "@example.com") + "-pw"
			r := login(t, gw.URL, email, pw)
			if r.Status != http.StatusOK {
				failed.Add(1)
				t.Errorf("login %s via replica %d: %d %s", email, i%2, r.Status, r.Body)
				return
			}
			var pair struct{ Access string }
			_ = json.Unmarshal(r.Body, &pair)
			if r := get(t, []*gateway{b, a}[i%2].URL+"/api/x", pair.Access); r.Status != http.StatusOK {
				failed.Add(1)
				t.Errorf("API via the other replica: %d %s", r.Status, r.Body)
			}
		})
		if failed.Load() > 0 {
			t.FailNow()
		}
		var rows, distinct int64
		db := a.GW.Store.DB()
		if err := db.Raw("SELECT count(*), count(DISTINCT id) FROM users").Row().Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		if rows != int64(len(users)) || distinct != rows {
			t.Fatalf("users table: %d rows, %d distinct ids; want %d", rows, distinct, len(users))
		}
		if strings.Contains(a.Logs.String()+b.Logs.String(), "mirror write failed") {
			t.Fatalf("a mirror write failed:\n%s\n%s", a.Logs, b.Logs)
		}
	})

	t.Run("logout through A is refused on B within a second", func(t *testing.T) {
		access, refresh := tokens(t, login(t, a.URL, "alice@example.com", "alice-pw"))
		for range 2 { // B verifies once and then serves its cached verdict
			if r := get(t, b.URL+"/api/x", access); r.Status != http.StatusOK {
				t.Fatalf("B before logout: %d %s", r.Status, r.Body)
			}
		}
		body := fmt.Sprintf(`{"refresh":%q,"access":%q}`, refresh, access)
		if r := call(t, http.MethodPost, a.URL+"/auth/token/blacklist/", "application/json", body); r.Status != http.StatusOK {
			t.Fatalf("logout via A: %d %s", r.Status, r.Body)
		}
		start := time.Now()
		eventually(t, time.Second, func() string {
			if r := get(t, b.URL+"/api/x", access); r.Status != http.StatusUnauthorized {
				return fmt.Sprintf("B still answers %d for the logged-out access token", r.Status)
			}
			return ""
		})
		t.Logf("B refused the logged-out token %s after the logout", time.Since(start).Round(time.Millisecond))
		wantError(t, get(t, b.URL+"/api/x", access), http.StatusUnauthorized, "token_not_valid")
		wantError(t, get(t, a.URL+"/api/x", access), http.StatusUnauthorized, "token_not_valid")
		// The refusal is the gateways' doing: SimpleJWT blacklists only the
		// refresh token, and its verify endpoint still accepts the access token.
		if !fa.Blacklisted(refresh) || fa.Blacklisted(access) {
			t.Fatalf("auth service: refresh blacklisted %v, access blacklisted %v; want true, false", fa.Blacklisted(refresh), fa.Blacklisted(access))
		}
		v := call(t, http.MethodPost, fa.URL()+fakeauth.PathVerify, "application/json", fmt.Sprintf(`{"token":%q}`, access))
		if v.Status != http.StatusOK {
			t.Fatalf("auth service verify of the access token: %d, want 200", v.Status)
		}
		// The two revocations are separate rows: B may read the second a
		// poll later than the first (a row committed out of sequence order
		// is picked up by the follower's reorder window).
		eventually(t, 2*time.Second, func() string {
			if n := scrape(t, miscMetricsURL(t, b)).get("jwtgate_peer_messages_total", "direction=received", "kind=token"); n < 2 {
				return fmt.Sprintf("B received %v token messages, want 2 (refresh and access)", n)
			}
			return ""
		})
		// Another session of the same user is untouched.
		other, _ := tokens(t, login(t, a.URL, "alice@example.com", "alice-pw"))
		if r := get(t, b.URL+"/api/x", other); r.Status != http.StatusOK {
			t.Fatalf("another session after logout: %d %s", r.Status, r.Body)
		}
	})

	t.Run("deactivation seen by A is refused on B within a second", func(t *testing.T) {
		u := fa.AddUser(fakeauth.User{Email: "erin@example.com", Password: "erin-pw"})
		access, _ := tokens(t, login(t, a.URL, "erin@example.com", "erin-pw"))
		if r := get(t, b.URL+"/api/x", access); r.Status != http.StatusOK {
			t.Fatalf("B before deactivation: %d %s", r.Status, r.Body)
		}
		fa.UpdateUser(u.ID, func(u *fakeauth.User) { u.IsActive = false })
		time.Sleep(1100 * time.Millisecond) // A's users.refresh_after
		wantError(t, get(t, a.URL+"/api/x", access), http.StatusForbidden, "user_inactive")
		eventually(t, time.Second, func() string {
			if r := get(t, b.URL+"/api/x", access); r.Status != http.StatusForbidden {
				return fmt.Sprintf("B still answers %d for a deactivated user", r.Status)
			}
			return ""
		})
	})
	_ = aliceID
}

// TestBlacklistEvictsOnEveryReplica: without revoke_on_logout a logout
// through A evicts the named tokens from B's verify cache too, so B asks
// the auth service again instead of trusting its cached verdict.
func TestBlacklistEvictsOnEveryReplica(t *testing.T) {
	dsn := pgDatabase(t)
	fa, aliceID := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	a := startGateway(t, replicaConfig(dsn, "10m", false), fa.URL(), up.URL, nil)
	b := startGateway(t, replicaConfig(dsn, "10m", false), fa.URL(), up.URL, nil)
	access, refresh := fa.IssuePair(aliceID)
	for range 2 {
		if r := get(t, b.URL+"/api/x", access); r.Status != http.StatusOK {
			t.Fatalf("B: %d %s", r.Status, r.Body)
		}
	}
	if n := fa.Calls(fakeauth.PathVerify); n != 1 {
		t.Fatalf("verify calls before logout = %d, want 1 (then cached)", n)
	}
	body := fmt.Sprintf(`{"refresh":%q,"access":%q}`, refresh, access)
	if r := call(t, http.MethodPost, a.URL+"/auth/token/blacklist/", "application/json", body); r.Status != http.StatusOK {
		t.Fatalf("logout via A: %d %s", r.Status, r.Body)
	}
	bMetrics := miscMetricsURL(t, b)
	eventually(t, time.Second, func() string {
		if r := scrape(t, bMetrics); r.get("jwtgate_peer_messages_total", "direction=received", "kind=token") < 2 {
			return "B has not heard of the logout"
		}
		return ""
	})
	if r := get(t, b.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("B after logout: %d %s (SimpleJWT still accepts the access token)", r.Status, r.Body)
	}
	// A verifies the access token before acting on the logout (only a token
	// that verified is revoked or broadcast): one call; then B asks again.
	if n := fa.Calls(fakeauth.PathVerify); n != 3 {
		t.Fatalf("verify calls after logout = %d, want 3 (A's check of the logged-out token, then B's): B must ask again, not trust its cache", n)
	}
}
