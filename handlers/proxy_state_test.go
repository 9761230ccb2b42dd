package handlers

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/metrics"
	"jwtgate/models"
)

// oneCaller authenticates every token as the same caller.
type oneCaller struct{ p authn.Principal }

func (a oneCaller) Authenticate(context.Context, string) (authn.Principal, error) { return a.p, nil }

// proxyStateGateway is observe and handleProxy over two routes to up,
// auth required, identity field "tenant": /api/ forwards the token, /own/
// does not; with the identity token and the issuer header on, and the
// access log in logs.
func proxyStateGateway(t *testing.T, up string, logs io.Writer) (*gin.Engine, *decider, *keyring) {
	t.Helper()
	sig := testKeyring(t, time.Unix(1_800_000_000, 0))
	idn := newIdentity("X-User-")
	idn.signer, idn.sendIssuer = sig, true
	no := false
	table, err := newRouteTable(settingsCompiled([]models.Route{{
		Name: "api", Path: "/api/", Upstream: up, Auth: models.AuthRequired,
		IdentityHeaders: models.RouteIdentity{Fields: []string{"tenant"}},
	}, {
		Name: "own", Path: "/own/", Upstream: up, Auth: models.AuthRequired, ForwardToken: &no,
		IdentityHeaders: models.RouteIdentity{Fields: []string{"tenant"}},
	}}), http.DefaultTransport, nil, nil, idn, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := &models.User{ID: "7", Email: "ann@example.com", Username: "ann", IsStaff: true, Fields: map[string]any{"tenant": "acme"}}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	cr := newCredentials("Authorization", []string{"Bearer"})
	d := &decider{
		table: table,
		gate:  newGate(log, cr, oneCaller{authn.Principal{User: u, Attrs: u.Attributes(), Issuer: "https://issuer.example"}}, newHeaderRules(idn, cr.header)),
		idn:   idn,
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(observe(log, metrics.New(nil), nil))
	r.NoRoute(handleProxy(d))
	return r, d, sig
}

// TestProxyIdentityAsCheck: the identity headers the proxy writes straight
// into the outbound request are exactly those the decision gives
// forward-auth for the same caller and route (the standard headers, the
// issuer, the route's field, the identity token with the same claims); a
// client's own spelling of one never reaches the upstream; the token does
// only on a route that forwards it. The caller's request is left
// as it came (the proxy changes only observe's copy), and the access log
// names the route and the caller.
func TestProxyIdentityAsCheck(t *testing.T) {
	var (
		mu        sync.Mutex
		gotHeader http.Header
		gotMethod string
		gotBody   string
	)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		gotHeader, gotMethod, gotBody = r.Header.Clone(), r.Method, string(b)
	}))
	t.Cleanup(up.Close)
	var logs bytes.Buffer
	gw, d, sig := proxyStateGateway(t, up.URL, &logs)

	// The gateway behind a real server (ReverseProxy needs a writer with
	// CloseNotify), noting whether the server's request changed.
	var changed string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, body, ctx := r.Method, r.Body, r.Context()
		gw.ServeHTTP(w, r)
		if r.Method != method || r.Body != body || r.Context() != ctx || stateOf(r.Context()) != nil {
			changed = "the server's request changed: method " + r.Method
		}
	}))
	t.Cleanup(front.Close)

	for _, tt := range []struct {
		route, method, body string
		forwards            bool
	}{
		{"api", "get", "", true},
		{"api", "post", "hello", true},
		{"own", "get", "", false},
		{"own", "post", "hello", false},
	} {
		t.Run(tt.route+" "+tt.method, func(t *testing.T) {
			logs.Reset()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, front.URL+"/"+tt.route+"/x", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer tok")
			req.Header.Set("Connection", "Authorization") // a forwarded token survives it
			req.Header["X_User_Id"] = []string{"1"}
			req.Header["X-User-Tenant"] = []string{"other"}
			resp, err := front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, respBody)
			}
			if changed != "" {
				t.Fatal(changed)
			}

			check, err := d.decide(t.Context(), decisionInput{
				Entry: entryCheck, Method: "GET", Path: "/" + tt.route + "/x", Header: http.Header{"Authorization": {"Bearer tok"}}, Trusted: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := strings.ToUpper(tt.method); gotMethod != want || gotBody != tt.body {
				t.Fatalf("upstream got %s %q, want %s %q", gotMethod, gotBody, want, tt.body)
			}
			if got := gotHeader.Values("Authorization"); !slices.Equal(got, map[bool][]string{true: {"Bearer tok"}}[tt.forwards]) {
				t.Fatalf("upstream Authorization %q, forwarded: %v", got, tt.forwards)
			}
			ident := http.Header{}
			for k, v := range gotHeader {
				if d.idn.spoofed(k) {
					ident[k] = v
				}
			}
			if got, want := slices.Sorted(maps.Keys(ident)), slices.Sorted(maps.Keys(check.Identity)); !slices.Equal(got, want) {
				t.Fatalf("upstream identity headers %q, forward-auth's %q", got, want)
			}
			for k, v := range check.Identity {
				if k == "X-User-Token" {
					continue
				}
				if !slices.Equal(ident[k], v) {
					t.Errorf("upstream %s = %q, forward-auth's %q", k, ident[k], v)
				}
			}
			if ident.Get("X-User-Tenant") != "acme" || ident.Get("X-User-Issuer") != "https://issuer.example" {
				t.Errorf("tenant %q, issuer %q", ident.Get("X-User-Tenant"), ident.Get("X-User-Issuer"))
			}
			claims := func(tok []string) jwt.MapClaims {
				t.Helper()
				if len(tok) != 1 {
					t.Fatalf("identity token %q", tok)
				}
				c := jwt.MapClaims{}
				if _, err := jwt.ParseWithClaims(tok[0], c, func(*jwt.Token) (any, error) { return sig.current().key.Public(), nil },
					jwt.WithTimeFunc(func() time.Time { return time.Unix(1_800_000_000, 0) })); err != nil {
					t.Fatalf("identity token: %v", err)
				}
				return c
			}
			if got, want := claims(ident["X-User-Token"]), claims(check.Identity["X-User-Token"]); len(got) != len(want) || got["sub"] != want["sub"] || got["tenant"] != want["tenant"] || got["aud"] != want["aud"] || got["exp"] != want["exp"] {
				t.Errorf("identity token claims %v, forward-auth's %v", got, want)
			}
			if !strings.Contains(logs.String(), `"route":"`+tt.route+`"`) || !strings.Contains(logs.String(), `"user_id":"7"`) {
				t.Errorf("access log does not name the route and the caller: %s", logs.String())
			}
		})
	}
}
