package authn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"jwtgate/models"
)

// throttleBudget is a CallBudget allowing n calls home, and counting asks.
type throttleBudget struct {
	mu    sync.Mutex
	left  int
	asked int
}

func (b *throttleBudget) Take(context.Context) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked++
	if b.left == 0 {
		return false, 3 * time.Second
	}
	b.left--
	return true, 0
}

func throttleAuth(t *testing.T, v Verifier, b CallBudget, now func() time.Time) *Authenticator {
	t.Helper()
	cfg := testConfig()
	cfg.CallsHome = b
	us := newMemUsers()
	for _, id := range []string{"1", "2", "3"} {
		us.remote[id] = models.User{ID: id, IsActive: true}
	}
	a, err := New(cfg, Deps{Verifier: v, Fetcher: us, Store: us, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestThrottleCallsHomeBudget: only verify-cache misses that would call
// home spend the budget; past it the caller gets a ThrottledError and the
// verifier is not called. Cached tokens (even past their TTL), negative
// cache hits and pre-check failures never ask.
func TestThrottleCallsHomeBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	v := &countingVerifier{}
	b := &throttleBudget{left: 2}
	a := throttleAuth(t, v, b, clock)
	good1, good2 := token(t, 1, now.Add(time.Hour)), token(t, 2, now.Add(time.Hour))
	if _, err := a.Token(t.Context(), good1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Token(t.Context(), good2); err != nil {
		t.Fatal(err)
	}
	// Budget spent: a new token is refused without a call home.
	_, err := a.Token(t.Context(), token(t, 3, now.Add(time.Hour)))
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != 3*time.Second {
		t.Fatalf("third new token: %v, want ThrottledError retry 3s", err)
	}
	if v.calls.Load() != 2 {
		t.Fatalf("verify calls %d, want 2", v.calls.Load())
	}
	asked := b.asked
	// Cached tokens are never limited, also once their verdict is past the
	// TTL (re-verified without asking the budget).
	for range 5 {
		if _, err := a.Token(t.Context(), good1); err != nil {
			t.Fatalf("cached token: %v", err)
		}
	}
	now = now.Add(31 * time.Second) // past cache.ttl, before exp
	if _, err := a.Token(t.Context(), good1); err != nil {
		t.Fatalf("cached token past ttl: %v", err)
	}
	if v.calls.Load() != 3 {
		t.Fatalf("verify calls %d, want 3 (the re-verification)", v.calls.Load())
	}
	// Pre-check failures cost nothing.
	for _, bad := range []string{"garbage", "a.b.c", token(t, 4, now.Add(-time.Hour))} {
		if _, err := a.Token(t.Context(), bad); !errors.Is(err, models.ErrTokenInvalid) {
			t.Fatalf("bad token %q: %v", bad, err)
		}
	}
	if b.asked != asked {
		t.Fatalf("budget asked %d times for cached and pre-check-refused tokens", b.asked-asked)
	}
	// A negative-cache hit costs nothing either.
	b.left = 1
	v.err = models.ErrTokenInvalid
	forged := token(t, 5, now.Add(time.Hour))
	for range 3 {
		if _, err := a.Token(t.Context(), forged); !errors.Is(err, models.ErrTokenInvalid) {
			t.Fatalf("forged: %v", err)
		}
	}
	if b.asked != asked+1 || v.calls.Load() != 4 {
		t.Fatalf("budget asked %d, verify calls %d; want 1 ask and 1 call for one forged token sent 3 times", b.asked-asked, v.calls.Load())
	}
}

// throttleClientKey names the client in a test context.
type throttleClientKey struct{}

// throttleClientBudget allows calls home for the clients in allow only.
type throttleClientBudget struct {
	mu    sync.Mutex
	allow map[string]bool
	asked map[string]int
}

func (b *throttleClientBudget) Take(ctx context.Context) (bool, time.Duration) {
	c, _ := ctx.Value(throttleClientKey{}).(string)
	b.mu.Lock()
	b.asked[c]++
	ok := b.allow[c]
	b.mu.Unlock()
	if !ok {
		time.Sleep(50 * time.Millisecond) // keep the refused call in flight for a waiter to join
	}
	return ok, time.Second
}

// TestThrottleCallsHomeCoalesced: requests waiting on one shared call home
// spend nothing; a request that waited on a call another client's budget
// refused tries once on its own budget.
func TestThrottleCallsHomeCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &countingVerifier{delay: 100 * time.Millisecond}
		b := &throttleClientBudget{allow: map[string]bool{"a": true}, asked: map[string]int{}}
		a := throttleAuth(t, v, b, time.Now)
		ctxA := context.WithValue(t.Context(), throttleClientKey{}, "a")
		ctxB := context.WithValue(t.Context(), throttleClientKey{}, "b")
		tok := token(t, 1, time.Now().Add(time.Hour))
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 30 {
			wg.Go(func() {
				if _, err := a.Token(ctxA, tok); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() != 0 || b.asked["a"] != 1 || v.calls.Load() != 1 {
			t.Fatalf("30 coalesced misses: %d failed, budget asked %d times, %d calls; want 0, 1, 1", failed.Load(), b.asked["a"], v.calls.Load())
		}

		// b (over budget) leads the call for a new token; a waits on it,
		// is refused by b's budget, and retries on its own.
		tok2 := token(t, 2, time.Now().Add(time.Hour))
		var errB, errA error
		wg.Go(func() { _, errB = a.Token(ctxB, tok2) })
		synctest.Wait()
		wg.Go(func() { _, errA = a.Token(ctxA, tok2) })
		wg.Wait()
		var te *ThrottledError
		if !errors.As(errB, &te) {
			t.Fatalf("b over budget: %v, want ThrottledError", errB)
		}
		if errA != nil {
			t.Fatalf("a waited on b's refused call: %v, want its own call to succeed", errA)
		}
		if b.asked["a"] != 2 || b.asked["b"] != 1 {
			t.Fatalf("budget asked a %d, b %d times; want 2 and 1", b.asked["a"], b.asked["b"])
		}
	})
}
