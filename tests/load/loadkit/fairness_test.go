package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestMintES256: keygen -alg ES256 writes a P-256 pair next to the RSA one
// (not over it); mint -key signs distinct ES256 tokens with it that verify
// with the public key; -rsa-key still works; a bad -alg is refused.
func TestMintES256(t *testing.T) {
	dir := t.TempDir()
	runOK(t, "keygen", "-dir", dir)
	runOK(t, "keygen", "-dir", dir, "-alg", "ES256")
	runOK(t, "mint", "-users", "2", "-count", "5", "-key", filepath.Join(dir, "es256-private.pem"), "-out", filepath.Join(dir, "es"))
	runOK(t, "mint", "-count", "1", "-rsa-key", filepath.Join(dir, "private.pem"), "-out", filepath.Join(dir, "rs"))

	pemBytes, _ := os.ReadFile(filepath.Join(dir, "es256-public.pem"))
	pub, err := jwt.ParseECPublicKeyFromPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	es, err := readTokens(filepath.Join(dir, "es"))
	if err != nil || len(es) != 5 {
		t.Fatalf("%d tokens, %v", len(es), err)
	}
	seen := map[string]bool{}
	for _, tok := range es {
		if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"ES256"})); err != nil || seen[tok] {
			t.Fatalf("token %q: %v (repeat %v)", tok, err, seen[tok])
		}
		seen[tok] = true
	}
	rs, _ := readTokens(filepath.Join(dir, "rs"))
	if h, _, _ := strings.Cut(rs[0], "."); h != "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9" {
		t.Errorf("-rsa-key token header %s", h)
	}
	if err := run(t.Context(), []string{"keygen", "-dir", dir, "-alg", "HS256"}, new(strings.Builder), new(strings.Builder)); err == nil {
		t.Error("keygen -alg HS256 accepted")
	}
}

// TestProxyDelay: proxy -delay holds every request before forwarding it,
// and a client that gives up first is never forwarded.
func TestProxyDelay(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	srv := httptest.NewServer(delayed(300*time.Millisecond, proxyHandler(target)))
	t.Cleanup(srv.Close)

	start := time.Now()
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); resp.StatusCode != 200 || d < 300*time.Millisecond || hits.Load() != 1 {
		t.Fatalf("status %d after %s, %d forwarded", resp.StatusCode, d, hits.Load())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/y", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a request given up on after 50ms was answered")
	}
	srv.Close() // waits for the handler: the abandoned request has finished
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d requests forwarded, want 1 (the abandoned one must not be)", n)
	}
	if err := run(t.Context(), []string{"proxy", "-target", up.URL, "-delay", "-1s"}, new(strings.Builder), new(strings.Builder)); err == nil {
		t.Error("a negative -delay accepted")
	}
}
