package authn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// usersFetcher answers the user fetch by token: the error set for a token,
// else the record.
type usersFetcher struct {
	mu      sync.Mutex
	user    models.User
	byToken map[string]error
	delay   time.Duration
	calls   atomic.Int64
}

func (f *usersFetcher) FetchUser(_ context.Context, token, id string, now time.Time) (models.User, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.byToken[token]; err != nil {
		return models.User{}, err
	}
	u := f.user
	u.FetchedAt = now
	return u, nil
}

// usersPeers records what would be told to the other replicas.
type usersPeers struct {
	mu    sync.Mutex
	users []models.UserKey
}

func (p *usersPeers) TokenRevoked([32]byte, time.Time) {}
func (p *usersPeers) UserChanged(k models.UserKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users = append(p.users, k)
}

func (p *usersPeers) told() []models.UserKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]models.UserKey(nil), p.users...)
}

// usersSetup is an authenticator whose user 1 is mirrored (active, staff)
// and due for a re-fetch.
func usersSetup(t *testing.T, cfg Config) (*Authenticator, *memUsers, *usersFetcher, *usersPeers) {
	t.Helper()
	us := newMemUsers()
	old := models.User{ID: "1", Email: "ann@x", IsActive: true, IsStaff: true, FetchedAt: time.Now().Add(-time.Hour)}
	us.db[old.Key().String()] = old
	f := &usersFetcher{user: models.User{ID: "1", Email: "ann@x", IsActive: true, IsStaff: true}, byToken: map[string]error{}}
	p := &usersPeers{}
	a, err := New(cfg, Deps{Verifier: &countingVerifier{}, Fetcher: f, Store: us, Peers: p, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a, us, f, p
}

// TestUsersRefusalsThatSayNothingAboutTheUser: a token refused at the user
// endpoint (expired on its way, any 401 but user_inactive/user_not_found)
// and a 403 refuse the request and change nothing: the mirror, the cache
// (the next request asks again) and the other replicas.
func TestUsersRefusalsThatSayNothingAboutTheUser(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"401 token_not_valid", &models.TokenError{Reason: models.ReasonRejected, Detail: "401"}, models.ErrTokenInvalid},
		{"403", fmt.Errorf("user endpoint answered 403: %w", models.ErrPermissionDenied), models.ErrPermissionDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, us, f, p := usersSetup(t, testConfig())
				expiring := token(t, 1, time.Now().Add(time.Hour))
				f.byToken[expiring] = tt.err
				for i := range 3 {
					_, err := a.Authenticate(t.Context(), expiring)
					if !errors.Is(err, tt.want) || errors.Is(err, models.ErrUserInactive) || errors.Is(err, models.ErrUserRejected) {
						t.Fatalf("attempt %d: err %v, want %v only", i, err, tt.want)
					}
				}
				if f.calls.Load() != 3 {
					t.Fatalf("%d fetches, want 3: a refused token must not refresh the record", f.calls.Load())
				}
				if u := us.db["1"]; !u.IsActive || !u.IsStaff {
					t.Fatalf("mirror changed: %+v", u)
				}
				if told := p.told(); len(told) != 0 {
					t.Fatalf("replicas told %v", told)
				}
				fresh := token(t, 1, time.Now().Add(2*time.Hour))
				pr, err := a.Authenticate(t.Context(), fresh)
				if err != nil || !pr.User.IsActive {
					t.Fatalf("fresh token: %v", err)
				}
			})
		})
	}
}

// TestUsersStatementsAboutTheUser: user_inactive, user_not_found, 404 and
// a 200 record saying is_active: false mark a mirrored user inactive
// everywhere, and tell the replicas once.
func TestUsersStatementsAboutTheUser(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"401 user_inactive", fmt.Errorf("401 user_inactive: %w: %w", models.ErrUserRejected, models.ErrUserInactive)},
		{"401 user_not_found", fmt.Errorf("401 user_not_found: %w", models.ErrUserRejected)},
		{"404", fmt.Errorf("404: %w", models.ErrUserRejected)},
		{"200 inactive", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, us, f, p := usersSetup(t, testConfig())
				tok := token(t, 1, time.Now().Add(time.Hour))
				if tt.err != nil {
					f.byToken[tok] = tt.err
				} else {
					f.user.IsActive = false
				}
				for i := range 2 {
					if _, err := a.Authenticate(t.Context(), tok); !errors.Is(err, models.ErrUserInactive) {
						t.Fatalf("attempt %d: err %v, want user inactive", i, err)
					}
				}
				if u := us.db["1"]; u.IsActive {
					t.Fatal("mirror still active")
				}
				if told := p.told(); len(told) != 1 || told[0] != (models.UserKey{ID: "1"}) {
					t.Fatalf("replicas told %v, want user 1 once", told)
				}
			})
		})
	}
}

// TestUsersSharedFetchKeepsTokensApart: an expiring token and a fresh one
// of the same user arrive together; the fresh one is never refused
// because it joined the expiring one's fetch.
func TestUsersSharedFetchKeepsTokensApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _, f, _ := usersSetup(t, testConfig())
		f.delay = time.Second
		expiring := token(t, 1, time.Now().Add(time.Hour))
		fresh := token(t, 1, time.Now().Add(2*time.Hour))
		f.byToken[expiring] = &models.TokenError{Reason: models.ReasonRejected, Detail: "401"}
		var wg sync.WaitGroup
		var freshOK, expiringRefused atomic.Int64
		for range 5 {
			wg.Go(func() {
				if _, err := a.Authenticate(t.Context(), expiring); errors.Is(err, models.ErrTokenInvalid) {
					expiringRefused.Add(1)
				}
			})
			wg.Go(func() {
				if _, err := a.Authenticate(t.Context(), fresh); err == nil {
					freshOK.Add(1)
				}
			})
		}
		wg.Wait()
		if freshOK.Load() != 5 {
			t.Fatalf("%d of 5 fresh-token requests passed", freshOK.Load())
		}
		if expiringRefused.Load()+freshOK.Load() < 5 {
			t.Fatalf("expiring refused %d", expiringRefused.Load())
		}
	})
}

// usersIssuerToken is an access token of user 1 from iss.
func usersIssuerToken(t *testing.T, iss any, uid any) string {
	t.Helper()
	c := jwt.MapClaims{"token_type": "access", "user_id": uid, "exp": time.Now().Add(time.Hour).Unix()}
	if iss != nil {
		c["iss"] = iss
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUsersSeveralIssuers: with two issuers, only the user endpoint's
// issuer resolves users; its users keep the namespace "" and carry its iss
// in Principal.Issuer and user.issuer. The other issuer's user 1 is refused
// as no user, never served from user 1's cached record. (The local
// verifier, not under test here, has checked iss against the keys.)
func TestUsersSeveralIssuers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Issuers, cfg.Issuer = []string{"https://a", "legacy"}, "https://a"
		a, _, f, _ := usersSetup(t, cfg)
		p, err := a.Authenticate(t.Context(), usersIssuerToken(t, "https://a", 1))
		if err != nil {
			t.Fatal(err)
		}
		if p.Issuer != "https://a" || p.Attrs["issuer"] != "https://a" || p.User.Issuer != "" || !p.User.IsStaff {
			t.Fatalf("principal issuer %q, attrs %v, user %+v", p.Issuer, p.Attrs["issuer"], p.User)
		}
		calls := f.calls.Load()
		for name, tok := range map[string]string{
			"legacy, number id":   usersIssuerToken(t, "legacy", 1),
			"legacy, string id":   usersIssuerToken(t, "legacy", "1"),
			"unknown issuer":      usersIssuerToken(t, "https://evil", 1),
			"iss in another case": usersIssuerToken(t, "HTTPS://A", 1),
		} {
			_, err := a.Authenticate(t.Context(), tok)
			if !errors.Is(err, models.ErrNoUserSource) || !errors.Is(err, models.ErrPermissionDenied) {
				t.Fatalf("%s: err %v, want no user source", name, err)
			}
		}
		for name, tok := range map[string]string{
			"no iss":      usersIssuerToken(t, nil, 1),
			"iss number":  usersIssuerToken(t, 7, 1),
			"iss as list": usersIssuerToken(t, []string{"https://a"}, 1),
		} {
			if _, err := a.Authenticate(t.Context(), tok); err == nil {
				t.Fatalf("%s: accepted", name)
			}
		}
		if f.calls.Load() != calls {
			t.Fatal("a token of an issuer without users caused a user fetch")
		}
	})
}

// TestUsersOneIssuerAttrs: with one issuer the key is the plain id and
// user.issuer is the configured issuer (or "").
func TestUsersOneIssuerAttrs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Issuer = "https://only"
		a, _, _, _ := usersSetup(t, cfg)
		p, err := a.Authenticate(t.Context(), usersIssuerToken(t, "whatever", 1))
		if err != nil {
			t.Fatal(err)
		}
		if p.Issuer != "https://only" || p.Attrs["issuer"] != "https://only" || p.User.Key() != (models.UserKey{ID: "1"}) {
			t.Fatalf("principal %q attrs %v key %v", p.Issuer, p.Attrs["issuer"], p.User.Key())
		}
	})
}
