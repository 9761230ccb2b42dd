package tests

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"jwtgate/handlers"
	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// edgePeople are the users of the edge tests, each with a fresh access
// token: alice uses billing, bob uses reports, carol is staff with no
// services, dave is a superuser, erin has no services field at all.
type edgePeople struct {
	alice, bob, carol, dave, erin       string // access tokens
	aliceID, bobID, carolID, daveID, id string // ids as text; id is erin's
}

func addEdgePeople(t testing.TB, fa *fakeauth.Server) edgePeople {
	t.Helper()
	mk := func(name string, staff, super bool, extra map[string]any) (string, string) {
		u := fa.AddUser(fakeauth.User{
			Email: name + "@example.com", Username: name, Password: name + "-pw",
			IsActive: true, IsStaff: staff, IsSuperuser: super, Extra: extra,
		})
		access, _ := fa.IssuePair(u.ID)
		return access, itoa(u.ID)
	}
	var p edgePeople
	p.alice, p.aliceID = mk("alice", false, false, map[string]any{"services": []string{"billing"}, "tenant": "acme", "plan": map[string]any{"tier": "gold"}})
	p.bob, p.bobID = mk("bob", false, false, map[string]any{"services": []string{"reports"}, "tenant": "globex"})
	p.carol, p.carolID = mk("carol", true, false, map[string]any{"services": []string{}})
	p.dave, p.daveID = mk("dave", false, true, map[string]any{"services": []string{}})
	p.erin, p.id = mk("erin", false, false, nil)
	return p
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fill replaces %NAME% placeholders in a config.
func fill(yaml string, kv ...string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		yaml = strings.ReplaceAll(yaml, "%"+kv[i]+"%", kv[i+1])
	}
	return yaml
}

// clientFrom is an HTTP client whose connections come from a given
// loopback address (127.0.0.2, ...), so the gateway sees another peer.
func clientFrom(t testing.TB, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// do sends a request with client c (nil: the shared client). raw header
// names are sent verbatim, not canonicalised, so x-user-id and X_User_Id
// go out as written.
func do(t testing.TB, c *http.Client, method, url, token string, raw map[string]string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return callReq(t, c, req, "", "", raw)
}

// callReq sends req with an optional body and verbatim raw headers.
func callReq(t testing.TB, c *http.Client, req *http.Request, contentType, body string, raw map[string]string) reply {
	t.Helper()
	if body != "" {
		req.Body = io.NopCloser(strings.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range raw {
		req.Header[k] = append(req.Header[k], v)
	}
	if c == nil {
		c = httpClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// normHeader folds a header name the way a WSGI/CGI upstream does.
func normHeader(k string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(k))
}

// identityHeaders returns the headers an upstream got in the X-User-
// namespace, in any spelling, keyed by their folded name.
func identityHeaders(h http.Header) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		if n := normHeader(k); strings.HasPrefix(n, "x-user-") {
			out[n] = append(out[n], v...)
		}
	}
	return out
}

// loadEdgeSettings fills and loads a config as startGateway does, for
// tests that want NewGateway's error rather than a running gateway.
func loadEdgeSettings(t testing.TB, yaml, authURL, upstreamURL string) models.Settings {
	t.Helper()
	db := filepath.Join(t.TempDir(), "jwtgate.db")
	s, err := models.LoadSettings(strings.NewReader(fill(yaml, "AUTH", authURL, "UPSTREAM", upstreamURL, "DB", db)), func(string) string { return "" })
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	return s
}

// newGatewayErr wires a gateway and returns NewGateway's error.
func newGatewayErr(t testing.TB, s models.Settings) (*handlers.Gateway, error) {
	t.Helper()
	gw, err := handlers.NewGateway(t.Context(), settingsRuntime(t, s), slog.New(slog.DiscardHandler), handlers.Options{})
	if err == nil {
		t.Cleanup(func() { _ = gw.Close() })
	}
	return gw, err
}
