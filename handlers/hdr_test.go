package handlers

import (
	"bufio"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// hdrKeys returns a header's keys, sorted.
func hdrKeys(h http.Header) []string {
	ks := make([]string, 0, len(h))
	for k := range h {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// hdrHeader builds a header from raw lines, as the server would parse them.
func hdrHeader(t *testing.T, lines ...string) http.Header {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: gw\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n")))
	if err != nil {
		t.Fatalf("parse %q: %v", lines, err)
	}
	return req.Header
}

// TestHdrClean: what survives headerRules.clean, and when it refuses.
func TestHdrClean(t *testing.T) {
	hr := newHeaderRules(newIdentity("X-User-"), "X-Api-Token")
	tests := []struct {
		name      string
		lines     []string
		ruleReads bool
		want      []string // surviving keys, sorted
		refused   bool
	}{
		{"identity in every spelling", []string{"X-User-Id: 1", "x_user_email: e", "X.User.Token: t", "X-Other: o"}, false, []string{"X-Other"}, false},
		{"owned aliases go, dash spellings stay", []string{"X_Real_IP: 1", "X-Real-Ip: 2", "X.Forwarded.Host: h", "X-Forwarded-For: f", "x_request_id: r", "X_Api_Token: a", "X-Api-Token: b", "X_Original_URI: u"}, false,
			[]string{"X-Api-Token", "X-Forwarded-For", "X-Real-Ip"}, false},
		{"two spellings", []string{"X-Tenant: a", "X_Tenant: b"}, false, nil, true},
		{"dot and underscore", []string{"X.Tenant: a", "x_tenant: b"}, true, nil, true},
		{"case only is one spelling", []string{"x-tenant: a", "X-TENANT: b"}, false, []string{"X-Tenant"}, false},
		{"lone alias kept without a header rule", []string{"X_Tenant: a"}, false, []string{"X_tenant"}, false},
		{"lone alias dropped for a header rule", []string{"X_Tenant: a", "X.Plan: p", "X-Tenant-Id: 1"}, true, []string{"X-Tenant-Id"}, false},
		{"Connection-listed header dropped", []string{"X-Tenant: a", "Connection: close, x-tenant"}, false, []string{"Connection"}, false},
		{"Connection-listed owned header kept", []string{"X-Request-Id: r", "X-Api-Token: t", "Connection: X-Request-Id, X-Api-Token"}, false, []string{"Connection", "X-Api-Token", "X-Request-Id"}, false},
		{"Connection-listed Upgrade kept for ReverseProxy", []string{"Upgrade: websocket", "Connection: Upgrade"}, false, []string{"Connection", "Upgrade"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdrHeader(t, tt.lines...)
			err := hr.clean(h, tt.ruleReads)
			if tt.refused {
				if !errors.Is(err, errHeaderSpellings) {
					t.Fatalf("err %v, want errHeaderSpellings", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := hdrKeys(h); !slices.Equal(got, tt.want) {
				t.Fatalf("kept %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHdrDropForwarded: a client's forwarded metadata goes in every
// spelling; other headers stay.
func TestHdrDropForwarded(t *testing.T) {
	h := hdrHeader(t, "X-Forwarded-For: 1", "X_Forwarded_Port: 2", "x.forwarded.prefix: 3", "X-Real-IP: 4", "Forwarded: for=5",
		"X-Original-URI: /a", "X_Original_Method: GET", "X-Forwardedx: keep", "X-Tenant: keep")
	dropForwarded(h)
	if got := hdrKeys(h); !slices.Equal(got, []string{"X-Forwardedx", "X-Tenant"}) {
		t.Fatalf("kept %q", got)
	}
}

// TestHdrIdentityOmitsEmpty: a user without username or email gets no
// empty header, and an empty extra field is left out too.
func TestHdrIdentityOmitsEmpty(t *testing.T) {
	idn := newIdentity("X-User-")
	u := &models.User{ID: "7", Fields: map[string]any{"tenant": ""}}
	p := &authn.Principal{User: u, Attrs: u.Attributes()}
	h := http.Header{}
	if err := idn.set(h, p, &route{fields: idn.fields([]string{"tenant"})}); err != nil {
		t.Fatal(err)
	}
	want := []string{"X-User-Id", "X-User-Is-Staff", "X-User-Is-Superuser"}
	if got := hdrKeys(h); !slices.Equal(got, want) {
		t.Fatalf("headers %q, want %q", got, want)
	}
}

// TestHdrRewriteSetsOwnHeaders: the route's Rewrite writes the decided
// headers after ReverseProxy removed the Connection-listed ones.
func TestHdrRewriteSetsOwnHeaders(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	t.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		setOutbound(pr.Out.Header, pr.In)
	}}
	own := http.Header{"X-User-Id": {"42"}, "X-User-Is-Staff": {"false"}, "X-User-Is-Superuser": {"false"}, "X-Request-Id": {"rid"}, "Authorization": {"Bearer t"}}
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("Connection", "X-User-Id, X-Request-Id, Authorization")
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("X-Request-Id", "rid")
	ctx, st := withRequestState(t.Context(), "rid")
	idn := newIdentity("X-User-")
	st.route, st.principal = &route{}, &authn.Principal{User: &models.User{ID: "42"}}
	st.idn, st.forward = &idn, []string{"Authorization"}
	req = req.WithContext(ctx)
	rp.ServeHTTP(httptest.NewRecorder(), req)
	for k, v := range own {
		if !slices.Equal(got.Values(k), v) {
			t.Errorf("upstream %s = %q, want %q", k, got.Values(k), v)
		}
	}
}

// TestHdrCleanAllocs: a common request (no '_' or '.' names, no
// Connection list) is cleaned without allocating: the rules sit on every
// proxied request.
func TestHdrCleanAllocs(t *testing.T) {
	hr := newHeaderRules(newIdentity("X-User-"), "Authorization")
	h := hdrHeader(t, "Authorization: Bearer x", "Accept: */*", "User-Agent: curl", "Accept-Encoding: gzip", "X-Tenant: acme", "Cookie: a=b")
	if n := testing.AllocsPerRun(100, func() {
		dropForwarded(h)
		if err := hr.clean(h, true); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per request, want 0", n)
	}
}

// set writes the caller's identity for a route as the decision does:
// signedToken, then write.
func (idn identity) set(h http.Header, p *authn.Principal, rt *route) error {
	tok, err := idn.signedToken(p, rt)
	if err != nil {
		return err
	}
	idn.write(h, p, rt, tok)
	return nil
}
