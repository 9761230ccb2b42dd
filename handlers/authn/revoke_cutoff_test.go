package authn

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// revokeClock is a settable clock.
type revokeClock struct{ ns atomic.Int64 }

func (c *revokeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *revokeClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *revokeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// revokeStore is an in-memory revocation table.
type revokeStore struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

func (s *revokeStore) RevokeToken(_ context.Context, key [32]byte, exp time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = exp
	return nil
}

func (s *revokeStore) RevokedTokens(_ context.Context, now time.Time) (map[[32]byte]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[[32]byte]time.Time{}
	for k, v := range s.m {
		if now.Before(v) {
			out[k] = v
		}
	}
	return out, nil
}

// revokeAccept accepts every token that passed the pre-checks.
type revokeAccept struct{}

func (revokeAccept) Verify(context.Context, string) error { return nil }

func revokeAuth(t *testing.T, clk *revokeClock, us *memUsers, rs *revokeStore) *Authenticator {
	t.Helper()
	cfg := testConfig()
	cfg.RevokeOnLogout = true
	d := Deps{Verifier: revokeAccept{}, Fetcher: us, Store: us, Log: slog.New(slog.DiscardHandler), Now: clk.now}
	if rs != nil {
		d.Revocations = rs
	}
	a, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// revokeToken signs an access token of user 7 with iat (omitted when nil).
func revokeToken(t *testing.T, jti string, iat *time.Time, exp time.Time) string {
	t.Helper()
	c := jwt.MapClaims{"token_type": "access", "user_id": 7, "exp": exp.Unix(), "jti": jti}
	if iat != nil {
		c["iat"] = iat.Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func revokeAt(t time.Time) *time.Time { return &t }

// TestRevokeUserCutoff: after RevokeUser at 1000.7 s, a token issued in an
// earlier second or without iat is refused (401 revoked), also when its
// verdict and its user were cached before (the warm path); a token issued
// in the cutoff's own second (a login right after the revoke) and later
// ones are accepted.
func TestRevokeUserCutoff(t *testing.T) {
	base := time.Unix(1000, 700_000_000)
	exp := base.Add(time.Hour)
	cases := []struct {
		name string
		iat  *time.Time
		ok   bool
	}{
		{"issued a second before", revokeAt(time.Unix(999, 0)), false},
		{"issued long before", revokeAt(time.Unix(10, 0)), false},
		{"no iat", nil, false},
		{"same second as the cutoff", revokeAt(time.Unix(1000, 0)), true},
		{"a second after", revokeAt(time.Unix(1001, 0)), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &revokeClock{}
			clk.set(base.Add(-time.Second))
			us := newMemUsers()
			us.remote["7"] = models.User{ID: "7", IsActive: true}
			a := revokeAuth(t, clk, us, nil)
			raw := revokeToken(t, "j-"+tc.name, tc.iat, exp)
			if tc.iat == nil || tc.iat.Unix() < 1000 { // warm the caches first
				if _, err := a.Authenticate(t.Context(), raw); err != nil {
					t.Fatalf("before the revoke: %v", err)
				}
			}
			clk.set(base)
			if err := a.RevokeUser(t.Context(), models.UserKey{ID: "7"}, "test"); err != nil {
				t.Fatal(err)
			}
			clk.add(2 * time.Second) // tokens "issued" up to now are not from the future
			for range 2 {            // cold, then warm
				_, err := a.Authenticate(t.Context(), raw)
				if tc.ok && err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if !tc.ok && models.TokenReason(err) != models.ReasonRevoked {
					t.Fatalf("want refused as revoked, got %v", err)
				}
			}
		})
	}
}

// TestRevokeCutoffSurvivesRefetchAndLogin: a re-fetch from the auth
// service and a login's Mirror never clear the cutoff (a fetch carries
// none); a re-fetch that finds the user inactive, or gone, sets it.
func TestRevokeCutoffSurvivesRefetchAndLogin(t *testing.T) {
	clk := &revokeClock{}
	clk.set(time.Unix(5000, 0))
	us := newMemUsers()
	us.remote["7"] = models.User{ID: "7", IsActive: true}
	a := revokeAuth(t, clk, us, nil)
	old := revokeToken(t, "old", revokeAt(time.Unix(4990, 0)), time.Unix(9000, 0))
	if err := a.RevokeUser(t.Context(), models.UserKey{ID: "7"}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := a.Mirror(t.Context(), models.User{ID: "7", IsActive: true, FetchedAt: clk.now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(t.Context(), old); models.TokenReason(err) != models.ReasonRevoked {
		t.Fatalf("after a login's mirror: %v", err)
	}
	clk.add(11 * time.Minute) // past users.refresh_after: re-fetched
	if _, err := a.Authenticate(t.Context(), old); models.TokenReason(err) != models.ReasonRevoked {
		t.Fatalf("after a re-fetch: %v", err)
	}
	if us.fetches.Load() == 0 {
		t.Fatal("the user was never re-fetched")
	}

	for _, gone := range []bool{false, true} {
		clk.add(11 * time.Minute) // the mirror's record is due for a re-fetch
		issued := clk.now().Add(-time.Second)
		fresh := revokeToken(t, "fresh"+issued.String(), &issued, time.Unix(9000, 0))
		us.mu.Lock()
		us.remote["7"] = models.User{ID: "7", IsActive: true}
		us.mu.Unlock()
		a.ForgetAll()
		if _, err := a.Authenticate(t.Context(), fresh); err != nil {
			t.Fatalf("fresh token: %v", err)
		}
		us.mu.Lock()
		if gone {
			delete(us.remote, "7")
		} else {
			us.remote["7"] = models.User{ID: "7", IsActive: false}
		}
		us.mu.Unlock()
		clk.add(11 * time.Minute)
		if _, err := a.Authenticate(t.Context(), fresh); err == nil {
			t.Fatal("an inactive or gone user was accepted")
		}
		us.mu.Lock()
		u := us.db["7"]
		us.mu.Unlock()
		if u.TokensValidAfter == nil || !u.TokensValidAfter.Equal(clk.now().Truncate(time.Second)) {
			t.Fatalf("gone=%t: cutoff %v, want now", gone, u.TokensValidAfter)
		}
	}
}

// TestRevokeLogoutPersisted: a logout is written to the revocation table,
// and an authenticator started afterwards (a restart, another replica)
// refuses the token from the table alone; it is pruned after exp.
func TestRevokeLogoutPersisted(t *testing.T) {
	clk := &revokeClock{}
	clk.set(time.Unix(5000, 0))
	us := newMemUsers()
	us.remote["7"] = models.User{ID: "7", IsActive: true}
	rs := &revokeStore{m: map[[32]byte]time.Time{}}
	a := revokeAuth(t, clk, us, rs)
	raw := revokeToken(t, "logout", revokeAt(time.Unix(4999, 0)), time.Unix(5600, 0))
	a.Revoke(t.Context(), raw)
	if len(rs.m) != 1 {
		t.Fatalf("revocation table has %d rows, want 1", len(rs.m))
	}
	b := revokeAuth(t, clk, us, rs)
	if _, err := b.Authenticate(t.Context(), raw); err != nil {
		t.Fatalf("before loading, the new replica accepts it (the fake verifier): %v", err)
	}
	if err := b.LoadRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(t.Context(), raw); models.TokenReason(err) != models.ReasonRevoked {
		t.Fatalf("after loading: %v", err)
	}
	clk.set(time.Unix(5601, 0))
	b.PruneRevocations()
	if n := b.RevokedLen(); n != 0 {
		t.Fatalf("%d revocations kept after exp", n)
	}
}

// TestRevokeNotFlushable: twenty thousand other logged-out tokens (more
// than the old LRU held) do not push an earlier logout out.
func TestRevokeNotFlushable(t *testing.T) {
	clk := &revokeClock{}
	clk.set(time.Unix(5000, 0))
	us := newMemUsers()
	us.remote["7"] = models.User{ID: "7", IsActive: true}
	a := revokeAuth(t, clk, us, nil)
	victim := revokeToken(t, "victim", revokeAt(time.Unix(4999, 0)), time.Unix(8000, 0))
	a.Revoke(t.Context(), victim)
	for i := range 20_000 {
		a.RevokeKey([32]byte{byte(i), byte(i >> 8), 1}, time.Unix(8000, 0))
	}
	if _, err := a.Authenticate(t.Context(), victim); !errors.Is(err, models.ErrTokenInvalid) || models.TokenReason(err) != models.ReasonRevoked {
		t.Fatalf("victim token after 20 000 revocations: %v", err)
	}
}

// TestRevokeCheckRefresh: a refresh token issued before its user's cutoff,
// or without iat, is refused; one from the cutoff's second or later, or of
// a user without a cutoff, passes.
func TestRevokeCheckRefresh(t *testing.T) {
	clk := &revokeClock{}
	clk.set(time.Unix(1000, 500_000_000))
	us := newMemUsers()
	a := revokeAuth(t, clk, us, nil)
	refresh := func(uid int, iat *time.Time) string {
		c := jwt.MapClaims{"token_type": "refresh", "user_id": uid, "exp": 5000, "jti": "r"}
		if iat != nil {
			c["iat"] = iat.Unix()
		}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := a.RevokeUser(t.Context(), models.UserKey{ID: "7"}, "test"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		raw  string
		ok   bool
	}{
		{"before", refresh(7, revokeAt(time.Unix(999, 0))), false},
		{"no iat", refresh(7, nil), false},
		{"same second", refresh(7, revokeAt(time.Unix(1000, 0))), true},
		{"after", refresh(7, revokeAt(time.Unix(1001, 0))), true},
		{"other user", refresh(8, revokeAt(time.Unix(10, 0))), true},
		{"junk", "not.a.token", true}, // the auth service refuses it
	}
	for _, tc := range cases {
		if err := a.CheckRefresh(t.Context(), tc.raw); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
