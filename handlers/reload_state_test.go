package handlers

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"jwtgate/models"
)

// A login guard built by a reload keeps each count whose limit and table
// size did not change, and starts afresh the one whose limit did.
func TestReloadLoginGuardKeepsCounts(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := models.CompiledThrottle{
		Throttle:     models.Throttle{CacheSize: 100, AccountsSize: 100, LoginBurst: 4},
		AccountLimit: models.Limit{N: 2, Per: time.Hour},
		ClientLimit:  models.Limit{N: 3, Per: time.Hour},
		LoginEvery:   time.Hour,
	}
	build := func(t *testing.T, cfg models.CompiledThrottle, prev *loginGuard) *loginGuard {
		t.Helper()
		g, err := newLoginGuard(cfg, 1<<16, log, clock, prev)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	// fail records one failed login of "victim" from 10.0.0.1 (or says it
	// was refused), and spends one login_rate token of that client.
	fail := func(g *loginGuard) bool {
		if ok, _ := g.rate.allow("10.0.0.1"); !ok {
			return false
		}
		a, _ := g.admit("10.0.0.1", []accountKey{g.key("victim")})
		if a == nil {
			return false
		}
		g.done(a, http.StatusUnauthorized)
		return true
	}
	otherClient := func(g *loginGuard) bool { // another address, same account
		a, _ := g.admit("10.0.0.2", []accountKey{g.key("victim")})
		if a != nil {
			g.done(a, http.StatusUnauthorized)
		}
		return a != nil
	}
	elsewhere := base
	elsewhere.CallsHome = models.Limit{N: 5, Per: time.Minute}
	elsewhere.LoginField = "email"
	accountChanged := base
	accountChanged.AccountLimit = models.Limit{N: 4, Per: time.Hour}
	tests := []struct {
		name           string
		next           models.CompiledThrottle
		accountAllowed bool // may 10.0.0.2 fail once more on the locked account?
	}{
		{"same settings", base, false},
		{"changes elsewhere", elsewhere, false},
		{"account limit changed", accountChanged, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := build(t, base, nil)
			for i := range 2 {
				if !fail(g) {
					t.Fatalf("failure %d refused", i+1)
				}
			}
			next := build(t, tt.next, g)
			if got := otherClient(next); got != tt.accountAllowed {
				t.Fatalf("after the reload, another failure on the locked account admitted: %v, want %v", got, tt.accountAllowed)
			}
			// failures_per_client and login_rate did not change: kept.
			if f, ok := next.clients.Peek("10.0.0.1"); !ok || f.n != 2 {
				t.Fatalf("the client's failures were not carried over: %+v", f)
			}
			for i, want := range []bool{true, true, false} { // burst 4, 2 spent
				if ok, _ := next.rate.allow("10.0.0.1"); ok != want {
					t.Fatalf("login_rate after the reload: attempt %d allowed %v, want %v", i+3, ok, want)
				}
			}
		})
	}
}
