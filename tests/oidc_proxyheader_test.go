package tests

import (
	"net/http"
	"strings"
	"testing"
)

// oidcProxyConfig adds a trusted proxy (127.0.0.2) that passes the
// caller's token in auth.proxy_header, an optional route and a route that
// does not forward tokens.
const oidcProxyConfig = oidcConfig + `
  - {path: /pub/, upstream: "%UPSTREAM%", auth: optional}
  - {path: /private/, upstream: "%UPSTREAM%", forward_token: false}
trusted_proxies: [127.0.0.2]
`

func TestOIDCProxyHeader(t *testing.T) {
	p := oidcStart(t)
	alice := p.Login(t, "alice", oidcResource).Access
	bob := p.Login(t, "bob", oidcResource).Access
	for _, name := range []string{"X-Access-Token", "X-Forwarded-Access-Token"} {
		t.Run(name, func(t *testing.T) {
			up := startUpstream(t)
			cfg := strings.Replace(oidcProxyConfig, "    jwks_refetch_interval: 1ms\n", "    jwks_refetch_interval: 1ms\n  proxy_header: "+name+"\n", 1)
			gw := oidcGateway(t, cfg, p, up)
			proxy := clientFrom(t, "127.0.0.2")
			folded := normHeader(name)

			// From a client that is not a trusted proxy the header is not a
			// credential, and no spelling of it reaches an upstream.
			if r := do(t, nil, http.MethodGet, gw.URL+"/api/x", "", map[string]string{name: alice}); r.Status != http.StatusUnauthorized {
				t.Fatalf("untrusted peer's proxy header authenticated: %d %s", r.Status, r.Body)
			}
			for _, spelling := range []string{name, strings.ToLower(name), strings.ReplaceAll(name, "-", "_"), strings.ReplaceAll(name, "-", "."), strings.ToUpper(strings.ReplaceAll(name, "-", "_"))} {
				r := do(t, nil, http.MethodGet, gw.URL+"/pub/x", "", map[string]string{spelling: alice})
				if r.Status != http.StatusOK {
					t.Fatalf("%s on an optional route: %d %s", spelling, r.Status, r.Body)
				}
				e := r.echo(t)
				for k := range e.Headers {
					if normHeader(k) == folded {
						t.Fatalf("untrusted %s reached the upstream as %s", spelling, k)
					}
				}
				if e.Headers.Get("X-User-Id") != "" {
					t.Fatalf("untrusted %s made the request authenticated", spelling)
				}
			}

			// From the trusted proxy it is the credential when no
			// Authorization header is present.
			r := do(t, proxy, http.MethodGet, gw.URL+"/api/x", "", map[string]string{name: alice})
			if r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != "alice" {
				t.Fatalf("trusted proxy header: %d %s", r.Status, r.Body)
			}
			if r := do(t, proxy, http.MethodGet, gw.URL+"/api/x", bob, map[string]string{name: alice}); r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != "bob" {
				t.Fatalf("Authorization must win over the proxy header: %d %s", r.Status, r.Body)
			}
			if r := do(t, proxy, http.MethodGet, gw.URL+"/api/billing/x", "", map[string]string{name: bob}); r.Status != http.StatusForbidden {
				t.Fatalf("bob through the proxy header on billing: %d", r.Status)
			}
			for why, raw := range map[string]map[string]string{
				"not a token":   {name: "garbage"},
				"forged":        {name: resignHS(t, alice)},
				"alias only":    {strings.ReplaceAll(name, "-", "_"): alice},
				"dotted alias":  {strings.ReplaceAll(name, "-", "."): alice},
				"bearer prefix": {name: "Bearer " + alice},
				"comma list":    {name: alice + "," + bob},
				"empty":         {name: ""},
			} {
				r := do(t, proxy, http.MethodGet, gw.URL+"/api/x", "", raw)
				if r.Status == http.StatusOK {
					t.Errorf("%s: authenticated through %v: %s", why, raw, r.Body)
				}
			}
			// Beside the dash spelling, an alias spelling is dropped: the
			// gateway and the upstream both see only the dash one.
			r = do(t, proxy, http.MethodGet, gw.URL+"/api/x", "", map[string]string{strings.ToLower(name): bob, strings.ReplaceAll(name, "-", "_"): alice})
			if e := r.echo(t); r.Status != http.StatusOK || e.Headers.Get("X-User-Id") != "bob" || e.Headers.Get(name) != bob || len(e.Headers[strings.ReplaceAll(name, "-", "_")]) != 0 {
				t.Fatalf("dash and alias spelling: %d %s", r.Status, r.Body)
			}
			// Twice: ambiguous, refused.
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/api/x", nil)
			req.Header[http.CanonicalHeaderKey(name)] = []string{alice, bob}
			if r := callReq(t, proxy, req, "", "", nil); r.Status != http.StatusBadRequest {
				t.Fatalf("proxy header twice: %d %s", r.Status, r.Body)
			}
			// It travels upstream only where the token does.
			if r := do(t, proxy, http.MethodGet, gw.URL+"/private/x", "", map[string]string{name: alice}); r.Status != http.StatusOK || r.echo(t).Headers.Get(name) != "" {
				t.Fatalf("forward_token: false route got the proxy header: %d %s", r.Status, r.Body)
			}
			if r := do(t, proxy, http.MethodGet, gw.URL+"/api/x", "", map[string]string{name: alice}); r.echo(t).Headers.Get(name) != alice {
				t.Fatalf("forwarding route lost the proxy header: %s", r.Body)
			}
		})
	}
}
