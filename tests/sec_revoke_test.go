package tests

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// revokeReplicaConfig is a replica on a shared PostgreSQL database with
// the admin API open to superusers.
func revokeReplicaConfig(dsn string) string {
	return replicaConfig(dsn, "10m", true) + `
admin:
  allow: "user.is_superuser"
`
}

// revokeRefused waits (bounded) until every gateway refuses token with 401
// token_not_valid, and returns the last answer's detail.
func revokeRefused(t *testing.T, within time.Duration, token string, gws ...*gateway) {
	t.Helper()
	for i, gw := range gws {
		eventually(t, within, func() string {
			if r := get(t, gw.URL+"/api/x", token); r.Status != http.StatusUnauthorized {
				return fmt.Sprintf("gateway %d still answers %d", i, r.Status)
			}
			return ""
		})
		wantError(t, get(t, gw.URL+"/api/x", token), http.StatusUnauthorized, "token_not_valid")
	}
}

// revokeAccepted asserts that every gateway accepts token.
func revokeAccepted(t *testing.T, token string, gws ...*gateway) {
	t.Helper()
	for i, gw := range gws {
		if r := get(t, gw.URL+"/api/x", token); r.Status != http.StatusOK {
			t.Fatalf("gateway %d: %d %s", i, r.Status, r.Body)
		}
	}
}

// revokeNextSecond waits for the next whole second. A user's cutoff is
// whole seconds, as SimpleJWT's iat is: a token issued in the cutoff's own
// second is accepted (so a login right after a revoke works), so a test
// revoking tokens it just issued waits for the second to pass first.
func revokeNextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
}

// revokePost posts an empty JSON body with a bearer token.
func revokePost(t *testing.T, url, token string) reply {
	t.Helper()
	if token == "" {
		return call(t, http.MethodPost, url, "application/json", "{}")
	}
	return call(t, http.MethodPost, url, "application/json", "{}", "Authorization", "Bearer "+token)
}

// revokePGExec runs SQL on the test database as the admin role.
func revokePGExec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestSecRevokeReplicasOnPostgres: logouts, user revocations, logout-all
// and deactivation reach every replica (the one started afterwards too)
// from the tables; NOTIFY payloads are only hints (junk, and a valid
// token's real revocation key, revoke nothing); a killed listener misses
// nothing.
func TestSecRevokeReplicasOnPostgres(t *testing.T) {
	dsn := pgDatabase(t)
	fa, _ := newFake(t, fakeauth.Options{})
	root := fa.AddUser(fakeauth.User{Email: "root@example.com", Password: "root-pw"})
	fa.UpdateUser(root.ID, func(u *fakeauth.User) { u.IsSuperuser = true })
	bob := fa.AddUser(fakeauth.User{Email: "bob@example.com", Password: "bob-pw"})
	fa.AddUser(fakeauth.User{Email: "carol@example.com", Password: "carol-pw"})
	dan := fa.AddUser(fakeauth.User{Email: "dan@example.com", Password: "dan-pw"})
	up := startUpstream(t)
	a := startGateway(t, revokeReplicaConfig(dsn), fa.URL(), up.URL, nil)
	b := startGateway(t, revokeReplicaConfig(dsn), fa.URL(), up.URL, nil)
	rootTok, _ := tokens(t, login(t, a.URL, "root@example.com", "root-pw"))

	var c *gateway
	outer := t // C outlives the subtest that starts it
	t.Run("logout on A: refused on A at once, on B within a second, on C started afterwards", func(t *testing.T) {
		access, refresh := tokens(t, login(t, a.URL, "alice@example.com", "alice-pw"))
		revokeAccepted(t, access, a, b, b) // B caches its verdict
		body := fmt.Sprintf(`{"refresh":%q,"access":%q}`, refresh, access)
		if r := call(t, http.MethodPost, a.URL+"/auth/token/blacklist/", "application/json", body); r.Status != http.StatusOK {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
		r := get(t, a.URL+"/api/x", access)
		wantError(t, r, http.StatusUnauthorized, "token_not_valid")
		if !strings.Contains(string(r.Body), "revoked") {
			t.Fatalf("A's refusal does not say revoked: %s", r.Body)
		}
		revokeRefused(t, time.Second, access, b)
		c = startGateway(outer, revokeReplicaConfig(dsn), fa.URL(), up.URL, nil)
		revokeRefused(t, 0, access, c)
		var n int64
		if err := a.GW.Store.DB().Raw("SELECT count(*) FROM revoked_tokens").Row().Scan(&n); err != nil || n != 1 {
			t.Fatalf("revoked_tokens rows = %d (%v), want 1: only the verified access token", n, err)
		}
	})
	if c == nil {
		t.FailNow()
	}

	t.Run("NOTIFY payloads are hints: junk and a real key revoke nothing", func(t *testing.T) {
		access, _ := tokens(t, login(t, a.URL, "alice@example.com", "alice-pw"))
		revokeAccepted(t, access, a, b, c)
		tok, err := models.PrecheckToken(access, "user_id", 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		until := time.Now().Add(time.Hour).Unix()
		forged := fmt.Sprintf(`{"k":"token","h":%q,"u":%d}`, hex.EncodeToString(tok.Key[:]), until)
		payloads := []string{forged, `not json`, `{"k":"token","h":"zz"}`, `{"k":"bogus"}`, `{"k":"user"}`, `{"k":"TOKEN","h":"00"}`}
		for i := range 300 {
			payloads = append(payloads, fmt.Sprintf(`{"k":"token","h":"%064x","u":%d}`, i, until))
		}
		for _, p := range payloads {
			revokePGExec(t, dsn, "SELECT pg_notify('jwtgate_evict', $1)", p)
		}
		time.Sleep(1500 * time.Millisecond) // past a poll: nothing to find in the tables
		revokeAccepted(t, access, a, b, c)
		m := scrape(t, miscMetricsURL(t, b))
		if m.get("jwtgate_peer_messages_total", "direction=malformed", "kind=json") < 1 ||
			m.get("jwtgate_peer_messages_total", "direction=malformed", "kind=hash") < 1 ||
			m.get("jwtgate_peer_messages_total", "direction=malformed", "kind=user") < 1 ||
			m.get("jwtgate_peer_messages_total", "direction=malformed", "kind=kind") < 1 {
			t.Fatalf("malformed hints not counted by kind")
		}
		if n := strings.Count(b.Logs.String(), "ignoring malformed notifications"); n != 1 {
			t.Fatalf("B logged %d lines about malformed notifications, want 1 per minute", n)
		}
	})

	t.Run("admin revoke on A: refused on A, B, C; a new login works at once", func(t *testing.T) {
		old, _ := tokens(t, login(t, b.URL, "bob@example.com", "bob-pw"))
		revokeAccepted(t, old, a, b, c)
		revokeNextSecond()
		r := revokePost(t, a.URL+"/admin/users/"+itoa(bob.ID)+"/revoke", rootTok)
		if r.Status != http.StatusOK {
			t.Fatalf("admin revoke: %d %s", r.Status, r.Body)
		}
		fresh, _ := tokens(t, login(t, a.URL, "bob@example.com", "bob-pw")) // usually the cutoff's own second
		revokeRefused(t, 0, old, a)
		revokeRefused(t, time.Second, old, b, c)
		revokeAccepted(t, fresh, a, b, c)
		var actor, action, target, reqID string
		err := a.GW.Store.DB().Raw("SELECT actor, action, target, request_id FROM audit_events ORDER BY id DESC LIMIT 1").Row().Scan(&actor, &action, &target, &reqID)
		if err != nil || actor != itoa(root.ID) || action != "revoke" || target != itoa(bob.ID) || reqID == "" {
			t.Fatalf("audit row: %q %q %q %q (%v)", actor, action, target, reqID, err)
		}
		if !strings.Contains(a.Logs.String(), "msg=audit actor_id="+itoa(root.ID)+" action=revoke target="+itoa(bob.ID)) {
			t.Fatalf("no audit log line:\n%s", a.Logs)
		}
	})

	t.Run("admin API: 403 for a non-superuser, 404 for unknown users and actions", func(t *testing.T) {
		alice, _ := tokens(t, login(t, a.URL, "alice@example.com", "alice-pw"))
		for _, p := range []string{"/admin/users/" + itoa(bob.ID) + "/revoke", "/admin/users/" + itoa(bob.ID) + "/deactivate", "/admin/users/" + itoa(bob.ID) + "/revoke/"} {
			wantError(t, revokePost(t, a.URL+p, alice), http.StatusForbidden, "permission_denied")
		}
		wantError(t, get(t, a.URL+"/admin/users/", alice), http.StatusForbidden, "permission_denied")
		wantError(t, get(t, a.URL+"/admin/users/", ""), http.StatusUnauthorized, "not_authenticated")
		wantError(t, revokePost(t, a.URL+"/admin/users/"+itoa(bob.ID)+"/explode", rootTok), http.StatusNotFound, "not_found")
		wantError(t, revokePost(t, a.URL+"/admin/users/99999/deactivate", rootTok), http.StatusNotFound, "not_found")
		wantError(t, get(t, a.URL+"/admin/users/99999/", rootTok), http.StatusNotFound, "not_found")
		r := get(t, a.URL+"/admin/users/?q=BOB%40&limit=1", rootTok)
		var page struct {
			Results []struct {
				ID               string     `json:"id"`
				TokensValidAfter *time.Time `json:"tokens_valid_after"`
			}
			Next *string
		}
		if err := json.Unmarshal(r.Body, &page); err != nil || r.Status != http.StatusOK || len(page.Results) != 1 || page.Results[0].ID != itoa(bob.ID) || page.Results[0].TokensValidAfter == nil {
			t.Fatalf("search: %d %s", r.Status, r.Body)
		}
		r = get(t, a.URL+"/admin/users/?q=%25&limit=1", rootTok) // a literal %, not a wildcard
		if err := json.Unmarshal(r.Body, &page); err != nil || len(page.Results) != 0 {
			t.Fatalf("q=%%: %s", r.Body)
		}
		r = get(t, a.URL+"/admin/users/?limit=1", rootTok)
		if err := json.Unmarshal(r.Body, &page); err != nil || len(page.Results) != 1 || page.Next == nil {
			t.Fatalf("paging: %s", r.Body)
		}
		wantError(t, get(t, a.URL+"/admin/users/?limit=100000", rootTok), http.StatusBadRequest, "bad_request")
	})

	t.Run("logout-all: every session of the caller refused everywhere; a new login works", func(t *testing.T) {
		s1, _ := tokens(t, login(t, a.URL, "carol@example.com", "carol-pw"))
		s2, _ := tokens(t, login(t, b.URL, "carol@example.com", "carol-pw"))
		revokeAccepted(t, s2, a, b, c)
		revokeNextSecond()
		r := revokePost(t, b.URL+"/auth/token/logout-all/", s1)
		if r.Status != http.StatusOK || r.json(t)["detail"] != "Logged out everywhere." {
			t.Fatalf("logout-all: %d %s", r.Status, r.Body)
		}
		revokeRefused(t, 0, s1, b)
		revokeRefused(t, time.Second, s1, a, c)
		revokeRefused(t, time.Second, s2, a, b, c)
		wantError(t, revokePost(t, b.URL+"/auth/token/logout-all/", ""), http.StatusUnauthorized, "not_authenticated")
		fresh, _ := tokens(t, login(t, c.URL, "carol@example.com", "carol-pw"))
		revokeAccepted(t, fresh, a, b, c)
	})

	t.Run("deactivate and activate through the admin API", func(t *testing.T) {
		old, _ := tokens(t, login(t, a.URL, "dan@example.com", "dan-pw"))
		revokeAccepted(t, old, a, b, c)
		revokeNextSecond()
		if r := revokePost(t, c.URL+"/admin/users/"+itoa(dan.ID)+"/deactivate", rootTok); r.Status != http.StatusOK {
			t.Fatalf("deactivate: %d %s", r.Status, r.Body)
		}
		for _, gw := range []*gateway{a, b, c} {
			eventually(t, time.Second, func() string {
				if r := get(t, gw.URL+"/api/x", old); r.Status != http.StatusForbidden {
					return fmt.Sprintf("deactivated user answered %d", r.Status)
				}
				return ""
			})
		}
		if r := revokePost(t, c.URL+"/admin/users/"+itoa(dan.ID)+"/activate", rootTok); r.Status != http.StatusOK {
			t.Fatalf("activate: %d %s", r.Status, r.Body)
		}
		fresh, _ := tokens(t, login(t, a.URL, "dan@example.com", "dan-pw"))
		revokeRefused(t, time.Second, old, a, b, c) // revoked at the deactivation: stays refused
		revokeAccepted(t, fresh, a, b, c)
	})

	t.Run("listener killed during revocations: nothing missed after reconnect", func(t *testing.T) {
		var toks, refreshes []string
		for range 5 {
			access, refresh := tokens(t, login(t, a.URL, "alice@example.com", "alice-pw"))
			toks, refreshes = append(toks, access), append(refreshes, refresh)
			revokeAccepted(t, access, b) // B caches the verdicts
		}
		revokePGExec(t, dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()")
		for i, tok := range toks {
			body := fmt.Sprintf(`{"refresh":%q,"access":%q}`, refreshes[i], tok)
			if r := call(t, http.MethodPost, a.URL+"/auth/token/blacklist/", "application/json", body); r.Status != http.StatusOK {
				t.Fatalf("logout: %d %s", r.Status, r.Body)
			}
		}
		for _, tok := range toks {
			revokeRefused(t, 5*time.Second, tok, a, b, c)
		}
		eventually(t, 5*time.Second, func() string {
			if !strings.Contains(b.Logs.String(), "notification connection back") {
				return "B never reconnected its listener"
			}
			return ""
		})
	})
}
