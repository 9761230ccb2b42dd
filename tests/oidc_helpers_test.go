package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// oidcProvider is a real OpenID Connect provider (npm oidc-provider, see
// tests/oidc/provider.mjs) on a loopback port.
type oidcProvider struct {
	URL string // the issuer
	cmd *exec.Cmd
}

// oidcStart runs tests/oidc/provider.mjs with Node.js until the test ends,
// with env (NAME=value) added to its environment. tests/setup.sh installs
// its packages (npm ci).
func oidcStart(t testing.TB, env ...string) *oidcProvider {
	t.Helper()
	dir, err := filepath.Abs("oidc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		t.Fatalf("oidc-provider is not installed: run bash tests/setup.sh (%v)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("node", "provider.mjs", fmt.Sprint(port))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			t.Logf("oidc provider's stderr (last %d bytes):\n%s", stderr.max, stderr.String())
		}
	})
	ready, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited) // stdout closed: node has exited
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() { // read to the end, so node never blocks on a full pipe
			if !seen && strings.Contains(sc.Text(), "listening") {
				seen = true
				close(ready)
			}
		}
	}()
	// Node loads oidc-provider's module graph before it listens: seconds on
	// a loaded machine (once over 30 s beside other test packages).
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("oidc provider exited before listening; its stderr:\n%s", stderr.String())
	case <-time.After(oidcStartWait):
		t.Fatalf("oidc provider did not start within %s; its stderr so far:\n%s", oidcStartWait, stderr.String())
	}
	return &oidcProvider{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
}

// oidcStartWait bounds how long the provider may take to listen.
const oidcStartWait = 60 * time.Second

// tailBuffer keeps the last max bytes written to it (a child's stderr),
// safe for concurrent use; writes never block or fail.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// Write appends p, dropping the oldest bytes beyond max.
func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

// String returns what it holds.
func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// Stop ends the provider (its port then refuses connections).
func (p *oidcProvider) Stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// Discovery is the provider's discovery document URL.
func (p *oidcProvider) Discovery() string { return p.URL + "/.well-known/openid-configuration" }

const (
	oidcClientID     = "jwtgate-test"
	oidcClientSecret = "test-secret"
	oidcRedirect     = "http://127.0.0.1:1/cb"
	oidcResource     = "urn:my-api"
)

var (
	oidcPromptRe = regexp.MustCompile(`name="prompt" value="([a-z]+)"`)
	oidcActionRe = regexp.MustCompile(`<form[^>]* action="([^"]+)"`)
)

// oidcTokens is the token endpoint's answer.
type oidcTokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	ID      string `json:"id_token"`
}

// Login logs account in through the provider's own login and consent
// forms (devInteractions) with an HTTP client, as a browser would, and
// exchanges the code. resource "" gets an opaque access token,
// oidcResource a JWT for the API.
func (p *oidcProvider) Login(t testing.TB, account, resource string) oidcTokens {
	t.Helper()
	q := url.Values{
		"client_id": {oidcClientID}, "response_type": {"code"}, "redirect_uri": {oidcRedirect},
		"scope": {"openid profile email roles offline_access"}, "state": {"s"}, "nonce": {"n"}, "prompt": {"consent"},
	}
	if resource != "" {
		q.Set("resource", resource)
	}
	u := oidcAuthorize(t, oidcBrowserClient(), p.URL+"/auth?"+q.Encode(), oidcRedirect, account)
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("oidc login: no code in %s", u)
	}
	return p.exchange(t, code, resource)
}

// oidcBrowserClient is an HTTP client with its own cookie jar that follows
// redirects as a browser does; oidcAuthorize stops it at the callback.
func oidcBrowserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// oidcAuthorize opens start with c, follows redirects, posts the
// provider's login (as account) and consent forms, and returns the first
// redirect to a URL starting with stop (the callback), not followed.
func oidcAuthorize(t testing.TB, c *http.Client, start, stop, account string) *url.URL {
	t.Helper()
	cc := *c
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), stop) || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := cc.Get(start)
	for step := 0; ; step++ {
		if err != nil {
			t.Fatalf("oidc login: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && strings.HasPrefix(loc, stop) {
			u, _ := url.Parse(loc)
			return u
		}
		m, a := oidcPromptRe.FindSubmatch(body), oidcActionRe.FindSubmatch(body)
		if step >= 4 || resp.StatusCode != http.StatusOK || m == nil || a == nil {
			t.Fatalf("oidc login: step %d: status %d: %.400s", step, resp.StatusCode, body)
		}
		form := url.Values{"prompt": {string(m[1])}}
		if string(m[1]) == "login" {
			form.Set("login", account)
			form.Set("password", "any")
		}
		action, _ := resp.Request.URL.Parse(string(a[1]))
		resp, err = cc.PostForm(action.String(), form)
	}
}

func (p *oidcProvider) exchange(t testing.TB, code, resource string) oidcTokens {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oidcRedirect}}
	if resource != "" {
		form.Set("resource", resource)
	}
	r := p.post(t, "/token", form)
	if r.Status != http.StatusOK {
		t.Fatalf("oidc token: %d %s", r.Status, r.Body)
	}
	var tk oidcTokens
	if err := json.Unmarshal(r.Body, &tk); err != nil || tk.Access == "" {
		t.Fatalf("oidc token: %v %s", err, r.Body)
	}
	return tk
}

// post sends a form to the provider as the test client (HTTP Basic).
func (p *oidcProvider) post(t testing.TB, path string, form url.Values) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(oidcClientID, oidcClientSecret)
	return callReq(t, nil, req, "", "", nil)
}

// Revoke revokes a token at the provider (RFC 7009).
func (p *oidcProvider) Revoke(t testing.TB, token string) {
	t.Helper()
	if r := p.post(t, "/token/revocation", url.Values{"token": {token}}); r.Status != http.StatusOK {
		t.Fatalf("oidc revoke: %d %s", r.Status, r.Body)
	}
}

// Rotate makes the provider sign with a new key (the old one stays in
// its JWKS) and returns the new kid.
func (p *oidcProvider) Rotate(t testing.TB) string {
	t.Helper()
	r := call(t, http.MethodPost, p.URL+"/_test/rotate", "", "")
	var out struct{ Kid string }
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &out) != nil {
		t.Fatalf("oidc rotate: %d %s", r.Status, r.Body)
	}
	return out.Kid
}

// SetAccount replaces an account's claims at the provider.
func (p *oidcProvider) SetAccount(t testing.TB, account string, claims map[string]any) {
	t.Helper()
	b, _ := json.Marshal(claims)
	if r := call(t, http.MethodPost, p.URL+"/_test/account/"+account, "application/json", string(b)); r.Status != http.StatusNoContent {
		t.Fatalf("oidc account: %d %s", r.Status, r.Body)
	}
}
