package authn

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// warmClock is a clock the test moves by hand.
type warmClock struct{ ns atomic.Int64 }

func (c *warmClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *warmClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// warmVerifier is a fake auth service that counts calls and, while gated,
// blocks every call until released.
type warmVerifier struct {
	mu      sync.Mutex
	calls   int
	err     error
	gate    chan struct{} // nil: answer at once
	entered chan struct{} // receives one value per call that blocks on gate
}

func (v *warmVerifier) Verify(ctx context.Context, _ string) error {
	v.mu.Lock()
	v.calls++
	gate, entered, err := v.gate, v.entered, v.err
	v.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (v *warmVerifier) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls
}

func (v *warmVerifier) set(err error, gated bool) chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = err
	v.gate, v.entered = nil, nil
	if gated {
		v.gate, v.entered = make(chan struct{}), make(chan struct{}, 16)
	}
	return v.gate
}

// warmAuth builds an authenticator on clk with a 10 s ttl whose background
// revalidations report on the returned channel.
func warmAuth(t *testing.T, v Verifier, clk *warmClock) (*Authenticator, chan struct{}) {
	t.Helper()
	cfg := testConfig()
	cfg.TTL = 10 * time.Second
	a, err := New(cfg, Deps{Verifier: v, Log: slog.New(slog.DiscardHandler), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 64)
	a.ahead.done = func() { done <- struct{}{} }
	return a, done
}

// warmWait waits (bounded) for one background revalidation to finish.
func warmWait(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no background revalidation finished")
	}
}

// warmNoneRunning asserts that no background revalidation finished.
func warmNoneRunning(t *testing.T, done chan struct{}, step string) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("%s: an unexpected background revalidation ran", step)
	default:
	}
}

// TestWarmRefreshAheadSteadyUse: a token used every 100 ms for 3 × ttl
// makes ⌈3/0.8⌉ = 4 calls home (the first sight, then one per 80% of the
// ttl) instead of 3 with a wait each, and every request is a cache hit
// but the first.
func TestWarmRefreshAheadSteadyUse(t *testing.T) {
	clk := &warmClock{}
	clk.Advance(time.Duration(testNow.UnixNano()))
	v := &warmVerifier{}
	a, done := warmAuth(t, v, clk)
	var started atomic.Int64
	a.ahead.started = func() { started.Add(1) }
	raw := token(t, 1, testNow.Add(time.Hour))
	misses := 0
	for i := range 300 { // 300 × 100 ms = 3 × ttl
		before := v.count()
		if _, err := a.Token(t.Context(), raw); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if v.count() != before && started.Load() == 0 { // the request itself made a call
			misses++
		}
		// Let a revalidation this hit started finish before the clock moves.
		if started.Swap(0) > 0 {
			warmWait(t, done)
		}
		clk.Advance(100 * time.Millisecond)
	}
	for len(done) > 0 {
		<-done
	}
	if got := v.count(); got != 4 {
		t.Fatalf("%d calls home over 3 × ttl, want 4", got)
	}
	if misses != 1 {
		t.Fatalf("%d requests made their own call home, want 1 (the first)", misses)
	}

	// An idle token still expires: no use, no revalidation.
	clk.Advance(20 * time.Second)
	if _, err := a.Token(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	if got := v.count(); got != 5 {
		t.Fatalf("after idling past the ttl: %d calls, want 5 (a miss)", got)
	}
	warmNoneRunning(t, done, "idle miss")
}

// TestWarmRefreshAheadDoesNotWait: a hit in the last 20% of the ttl
// returns while its revalidation is blocked at the auth service; a second
// hit does not start another; the new verdict replaces the old; a refusal
// (401) evicts; the verdict never outlives exp.
func TestWarmRefreshAheadDoesNotWait(t *testing.T) {
	clk := &warmClock{}
	clk.Advance(time.Duration(testNow.UnixNano()))
	v := &warmVerifier{}
	a, done := warmAuth(t, v, clk)
	raw := token(t, 1, testNow.Add(time.Hour))
	if _, err := a.Token(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	gate := v.set(nil, true)
	clk.Advance(8500 * time.Millisecond)
	served := make(chan error, 1)
	go func() { _, err := a.Token(t.Context(), raw); served <- err }()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("hit during revalidation: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request waited for the revalidation")
	}
	select {
	case <-v.entered: // the revalidation is at the auth service, blocked
	case <-time.After(10 * time.Second):
		t.Fatal("no revalidation started")
	}
	for range 3 { // more hits while it is in flight: served, no second call
		if _, err := a.Token(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.count(); got != 2 {
		t.Fatalf("%d calls, want 2 (one revalidation in flight)", got)
	}
	close(gate)
	warmWait(t, done)
	v.set(nil, false)
	clk.Advance(5 * time.Second) // past the first verdict's expiry (10 s)
	if _, err := a.Token(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	if got := v.count(); got != 2 {
		t.Fatalf("after the old expiry: %d calls, want 2 (the revalidated verdict)", got)
	}

	// The auth service now refuses it: the revalidation evicts, the next
	// request is refused.
	v.set(&models.TokenError{Reason: models.ReasonRejected, Detail: "blacklisted"}, false)
	clk.Advance(4 * time.Second) // 17.5 s: last 20% of the verdict given at 8.5 s
	if _, err := a.Token(t.Context(), raw); err != nil {
		t.Fatalf("hit that starts the refused revalidation: %v", err)
	}
	warmWait(t, done)
	if _, err := a.Token(t.Context(), raw); !errors.Is(err, models.ErrTokenInvalid) {
		t.Fatalf("after a refused revalidation: %v, want refused", err)
	}
}

// TestWarmRefreshAheadOutageAndExp: an unavailable auth service does not
// turn hits into calls (one retry per backoff); a verdict already bounded
// by exp is never revalidated.
func TestWarmRefreshAheadOutageAndExp(t *testing.T) {
	clk := &warmClock{}
	clk.Advance(time.Duration(testNow.UnixNano()))
	v := &warmVerifier{}
	a, done := warmAuth(t, v, clk)
	raw := token(t, 1, testNow.Add(time.Hour))
	if _, err := a.Token(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	v.set(models.ErrAuthUnavailable, false)
	clk.Advance(8500 * time.Millisecond)
	for i := range 5 { // 8.5 s … 8.9 s: within the 0.5 s backoff after the failure
		if _, err := a.Token(t.Context(), raw); err != nil {
			t.Fatalf("hit %d during the outage: %v", i, err)
		}
		if i == 0 {
			warmWait(t, done)
		}
		clk.Advance(100 * time.Millisecond)
	}
	if got := v.count(); got != 2 {
		t.Fatalf("%d calls during the outage, want 2 (one failed revalidation, then backoff)", got)
	}
	clk.Advance(500 * time.Millisecond) // backoff over: one more try
	if _, err := a.Token(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	warmWait(t, done)
	if got := v.count(); got != 3 {
		t.Fatalf("%d calls after the backoff, want 3", got)
	}

	// exp 5 s away: the verdict ends at exp, refresh-ahead cannot extend it.
	v.set(nil, false)
	short := token(t, 2, clk.Now().Add(5*time.Second).Truncate(time.Second).Add(time.Second))
	if _, err := a.Token(t.Context(), short); err != nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Second)
	if _, err := a.Token(t.Context(), short); err != nil {
		t.Fatal(err)
	}
	warmNoneRunning(t, done, "verdict bounded by exp")
	if got := v.count(); got != 4 {
		t.Fatalf("%d calls, want 4 (no revalidation of a verdict bounded by exp)", got)
	}
}

// TestWarmIssued: a token the auth service just issued is cached as
// verified (no call home on first use) only if it passes the pre-checks,
// is not revoked, and for no longer than min(ttl, exp).
func TestWarmIssued(t *testing.T) {
	clk := &warmClock{}
	clk.Advance(time.Duration(testNow.UnixNano()))
	v := &warmVerifier{}
	a, _ := warmAuth(t, v, clk)
	good := token(t, 1, testNow.Add(time.Hour))
	parts := strings.Split(good, ".")
	padded := parts[0] + "." + parts[1] + "=." + parts[2]
	refresh, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"token_type": "refresh", "user_id": 1, "exp": testNow.Add(time.Hour).Unix(), "jti": "r1",
	}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, raw string
		want      bool
	}{
		{"login access", good, true},
		{"padded spelling", padded, false},
		{"bearer prefix", "Bearer " + good, false},
		{"trailing space", good + " ", false},
		{"refresh token", refresh, false},
		{"expired", token(t, 2, testNow.Add(-time.Hour)), false},
		{"no user id", strings.Join([]string{parts[0], "eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjo0MTAyNDQ0ODAwfQ", parts[2]}, "."), false},
		{"too long", good + strings.Repeat("A", models.MaxTokenBytes), false},
		{"junk", "not-a-token", false},
	} {
		if got := a.Warm(t.Context(), c.raw); got != c.want {
			t.Errorf("%s: warmed %v, want %v", c.name, got, c.want)
		}
	}
	if a.CacheLen() != 1 {
		t.Fatalf("%d verdicts cached, want 1", a.CacheLen())
	}
	if _, err := a.Token(t.Context(), good); err != nil || v.count() != 0 {
		t.Fatalf("first use of a warmed token: err %v, %d calls home, want none", err, v.count())
	}
	clk.Advance(11 * time.Second) // past the ttl: verified again
	if _, err := a.Token(t.Context(), good); err != nil || v.count() != 1 {
		t.Fatalf("after the ttl: err %v, %d calls, want 1", err, v.count())
	}

	// Bounded by exp: a warmed token 3 s from exp is refused at exp.
	soon := token(t, 3, clk.Now().Add(3*time.Second).Truncate(time.Second))
	if !a.Warm(t.Context(), soon) {
		t.Fatal("short-lived token not warmed")
	}
	clk.Advance(4 * time.Second)
	if _, err := a.Token(t.Context(), soon); !errors.Is(err, models.ErrTokenInvalid) || v.count() != 1 {
		t.Fatalf("past exp: err %v, %d calls, want refused with no call", err, v.count())
	}

	// A logged-out token (revoked by its revocation key) is not warmed.
	other := token(t, 4, testNow.Add(2*time.Hour))
	ot, err := models.PrecheckToken(other, "user_id", 0, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	a.RevokeKey(ot.Key, clk.Now().Add(time.Hour))
	if a.Warm(t.Context(), other) {
		t.Fatal("a revoked token was warmed")
	}
	// Refused by the auth service before (negative cache): not warmed.
	v.set(&models.TokenError{Reason: models.ReasonRejected, Detail: "no"}, false)
	bad := token(t, 5, testNow.Add(2*time.Hour))
	if _, err := a.Token(t.Context(), bad); err == nil {
		t.Fatal("refused token accepted")
	}
	if a.Warm(t.Context(), bad) {
		t.Fatal("a token the auth service refused was warmed")
	}
}

// TestWarmIssuedLocal: with verify: local the local verifier still checks
// a warmed token (a forged signature is not cached), with no call home.
func TestWarmIssuedLocal(t *testing.T) {
	k := keys(t)
	local := newTestLocal(t, LocalConfig{Algorithms: []string{"RS256"}, Issuers: staticIssuer("testdata/rsa_public.pem")}, env(nil))
	a, err := New(Config{UserIDClaim: "user_id", CacheSize: 100, TTL: time.Minute, NegativeTTL: time.Second,
		UserCacheSz: 10, RefreshAfter: time.Minute, CallTimeout: time.Second},
		Deps{Verifier: local, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "")
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + strings.Split(sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"user_id": "1"}), ""), ".")[1] + "." + parts[2]
	if a.Warm(t.Context(), forged) {
		t.Fatal("forged token warmed in local mode")
	}
	if !a.Warm(t.Context(), good) || a.CacheLen() != 1 {
		t.Fatal("genuine token not warmed in local mode")
	}
}
