package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// tokensPeers records what Revoke tells the other replicas.
type tokensPeers struct {
	mu      sync.Mutex
	revoked []time.Time // until of each TokenRevoked
}

func (p *tokensPeers) TokenRevoked(_ [32]byte, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked = append(p.revoked, until)
}

func (p *tokensPeers) UserChanged(models.UserKey) {}

// tokensAuthenticator is an authenticator verifying locally with the
// ES256 test key, logging out at the edge.
func tokensAuthenticator(t *testing.T) (*Authenticator, *tokensPeers) {
	t.Helper()
	l := newTestLocal(t, LocalConfig{Algorithms: []string{"ES256"}, Issuers: staticIssuer("testdata/ec_public.pem")}, nil)
	users := newMemUsers()
	users.remote["42"] = models.User{ID: "42", IsActive: true}
	cfg := Config{UserIDClaim: "user_id", CacheSize: 1000, TTL: time.Minute, NegativeTTL: time.Minute, RevokeOnLogout: true, UserCacheSz: 10, RefreshAfter: time.Minute, CallTimeout: time.Second}
	p := &tokensPeers{}
	a, err := New(cfg, Deps{Verifier: l, Fetcher: users, Store: users, Peers: p, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return a, p
}

// tokensMalleate returns the other valid ES256 signature of tok: (r, n-s).
func tokensMalleate(t *testing.T, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("ES256 signature: %v", err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	out := append([]byte(nil), sig[:32]...)
	out = append(out, s.FillBytes(make([]byte, 32))...)
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(out)
}

// TestTokensRevokeByJTI: a logged-out token is refused in every spelling
// that verifies, including ECDSA's second signature (r, n-s), whether or
// not that spelling was cached before the logout.
func TestTokensRevokeByJTI(t *testing.T) {
	k := keys(t)
	a, peers := tokensAuthenticator(t)
	ctx := context.Background()
	tok := sign(t, jwt.SigningMethodES256, k.ec, claims(nil), "")
	alt := tokensMalleate(t, tok)
	for _, raw := range []string{tok, alt} {
		if _, err := a.Token(ctx, raw); err != nil {
			t.Fatalf("before logout: %v (both signatures verify)", err)
		}
	}
	a.Revoke(ctx, tok)
	for name, raw := range map[string]string{"original": tok, "malleated (cached)": alt} {
		if _, err := a.Token(ctx, raw); models.TokenReason(err) != models.ReasonRevoked {
			t.Errorf("%s after logout: %v, want revoked", name, err)
		}
	}
	// Logged out by its other spelling: the original is refused too.
	tok2 := sign(t, jwt.SigningMethodES256, k.ec, claims(map[string]any{"jti": "second"}), "")
	a.Revoke(ctx, tokensMalleate(t, tok2))
	if _, err := a.Token(ctx, tok2); models.TokenReason(err) != models.ReasonRevoked {
		t.Errorf("original after logout by its other signature: %v, want revoked", err)
	}
	// Peers hear of both logouts: an eviction by text and a revocation until exp.
	peers.mu.Lock()
	defer peers.mu.Unlock()
	if len(peers.revoked) != 4 {
		t.Fatalf("%d peer messages, want 4", len(peers.revoked))
	}
}

// TestTokensRevokeOnlyVerified: logouts naming forged, expired, refresh
// or junk tokens record nothing and tell no peer, so 5 000 of them do not
// push a real revocation out of the bounded list (128 here).
func TestTokensRevokeOnlyVerified(t *testing.T) {
	k := keys(t)
	a, peers := tokensAuthenticator(t)
	ctx := context.Background()
	real := sign(t, jwt.SigningMethodES256, k.ec, claims(nil), "")
	a.Revoke(ctx, real)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		var junk string
		switch i % 4 {
		case 0: // forged: well-formed, another key
			junk = sign(t, jwt.SigningMethodES256, other, claims(map[string]any{"jti": "f" + itoaTokens(i)}), "")
		case 1: // refresh token of the real key
			junk = sign(t, jwt.SigningMethodES256, k.ec, claims(map[string]any{"token_type": "refresh", "jti": "r" + itoaTokens(i)}), "")
		case 2: // expired
			junk = sign(t, jwt.SigningMethodES256, k.ec, claims(map[string]any{"exp": testNow.Add(-time.Hour).Unix(), "jti": "e" + itoaTokens(i)}), "")
		default:
			junk = "junk." + itoaTokens(i) + ".x"
		}
		a.Revoke(ctx, junk)
	}
	if _, err := a.Token(ctx, real); models.TokenReason(err) != models.ReasonRevoked {
		t.Fatalf("real revocation lost after junk logouts: %v", err)
	}
	peers.mu.Lock()
	defer peers.mu.Unlock()
	if len(peers.revoked) != 2 {
		t.Fatalf("%d peer messages, want 2 (the real logout only)", len(peers.revoked))
	}
}

func itoaTokens(i int) string { return strconv.Itoa(i) }
