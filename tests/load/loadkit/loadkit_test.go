package main

import (
	"bytes"
	"io"
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

	"jwtgate/models"
)

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(t.Context(), args, &out, &errOut); err != nil {
		t.Fatalf("loadkit %v: %v %s", args, err, errOut.String())
	}
	return out.String()
}

// TestMintHS256AndRS256: tokens are distinct, split round-robin, cycle
// through the users, and verify with the secret or the public key.
func TestMintHS256AndRS256(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LOADKIT_SECRET", "0123456789abcdef0123456789abcdef")
	runOK(t, "mint", "-users", "3", "-count", "7", "-split", "2", "-out", filepath.Join(dir, "hs"))
	runOK(t, "keygen", "-dir", dir)
	runOK(t, "mint", "-users", "2", "-count", "2", "-rsa-key", filepath.Join(dir, "private.pem"), "-out", filepath.Join(dir, "rs"))

	hs, err := readTokens(filepath.Join(dir, "hs"))
	if err != nil || len(hs) != 7 {
		t.Fatalf("%d tokens, %v", len(hs), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "hs.1")); strings.Count(string(b), "\n") != 3 {
		t.Fatalf("hs.1 holds %q", b)
	}
	users := map[float64]int{}
	seen := map[string]bool{}
	for _, tok := range hs {
		c := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return []byte("0123456789abcdef0123456789abcdef"), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()); err != nil {
			t.Fatal(err)
		}
		if c["token_type"] != "access" || seen[tok] {
			t.Fatalf("claims %v (repeat %v)", c, seen[tok])
		}
		seen[tok] = true
		users[c["user_id"].(float64)]++
	}
	if len(users) != 3 {
		t.Fatalf("users %v", users)
	}
	pemBytes, _ := os.ReadFile(filepath.Join(dir, "public.pem"))
	pub, err := jwt.ParseRSAPublicKeyFromPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := readTokens(filepath.Join(dir, "rs"))
	for _, tok := range rs {
		if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"RS256"})); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSeed: users land in the mirror as the gateway reads them.
func TestSeed(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	runOK(t, "seed", "-db", db, "-users", "5", "-first-user", "10")
	st, err := models.OpenStore(t.Context(), models.Database{Driver: "sqlite", DSN: db}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.User(t.Context(), "14")
	if err != nil || u.Email != "user14@example.com" || !u.IsActive || u.Attributes()["services"] == nil {
		t.Fatalf("%+v %v", u, err)
	}
	if us, _ := st.Users(t.Context()); len(us) != 5 {
		t.Fatalf("%d users", len(us))
	}
}

// TestProxyAndWarm: the bare proxy forwards to the upstream; warm sends
// every token once and fails unless every answer is 200.
func TestProxyAndWarm(t *testing.T) {
	up := httptest.NewServer(upstreamHandler())
	defer up.Close()
	target, _ := url.Parse(up.URL)
	px := httptest.NewServer(proxyHandler(target))
	defer px.Close()

	var hits atomic.Int64
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer t") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		proxyHandler(target).ServeHTTP(w, r)
	}))
	defer gw.Close()
	file := filepath.Join(t.TempDir(), "toks")
	_ = os.WriteFile(file, []byte("t1\nt2\nt3\n"), 0o600)
	if out := runOK(t, "warm", "-url", gw.URL+"/api/x", "-tokens", file, "-c", "2"); !strings.Contains(out, "map[200:3]") || hits.Load() != 3 {
		t.Fatalf("warm: %s (hits %d)", out, hits.Load())
	}
	_ = os.WriteFile(file, []byte("t1\nbad\n"), 0o600)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"warm", "-url", gw.URL + "/api/x", "-tokens", file}, &out, &out); err == nil {
		t.Fatal("warm succeeded with a refused token")
	}
	resp, err := http.Get(px.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("proxy: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestProxyHeaders: -header values reach the upstream on every request,
// and the upstream's /_headers answer lists what it received, so run.sh
// can give the bare proxy exactly the headers a gateway adds.
func TestProxyHeaders(t *testing.T) {
	up := httptest.NewServer(upstreamHandler())
	t.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	var extra headerFlags
	for _, f := range []string{"x-user-id: 7", "X-Request-Id:abc"} {
		if err := extra.Set(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"no colon", ": empty name"} {
		if err := extra.Set(bad); err == nil {
			t.Errorf("-header %q accepted", bad)
		}
	}
	px := httptest.NewServer(proxyHandler(target, extra...))
	t.Cleanup(px.Close)
	for _, tc := range []struct {
		name, url string
		want      []string
		not       []string
	}{
		{"bare, with headers", px.URL + "/api/_headers", []string{"X-Request-Id: abc\n", "X-User-Id: 7\n", "X-Forwarded-For: 127.0.0.1\n", "Authorization: Bearer t1\n"}, nil},
		{"upstream itself", up.URL + "/api/_headers", []string{"Authorization: Bearer t1\n"}, []string{"X-User-Id", "X-Forwarded-For"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			req.Header.Set("Authorization", "Bearer t1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("upstream saw %q, want a line %q", b, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(string(b), n) {
					t.Errorf("upstream saw %q, want no %s", b, n)
				}
			}
		})
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"upstream", "-listen", "0.0.0.0:0"}, {"mint", "-count", "0", "-out", "x"}, {"seed"}, {"soak"}} {
		var out bytes.Buffer
		if err := run(t.Context(), args, &out, &out); err == nil {
			t.Errorf("loadkit %v succeeded", args)
		}
	}
}
