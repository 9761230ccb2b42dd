package handlers

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// The fuzz targets below run their seed corpus (testdata/fuzz/<name>) in
// every `go test`; `tests/fuzz.sh TIME` fuzzes each for TIME.

var fuzzNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// FuzzCredentials: whatever the Authorization header holds, extraction
// never panics, refuses only with a token error or errAmbiguousCredential (a
// list of credentials), returns a token that is a
// space-free part of the header, and the pre-checks after it refuse with a
// reason or accept a token with a user id and a future exp.
func FuzzCredentials(f *testing.F) {
	f.Add("Bearer a.b.c", false)
	f.Fuzz(func(t *testing.T, value string, bare bool) {
		cr := credentials{header: "Authorization", types: []string{"Bearer", "JWT"}}
		if bare {
			cr.types = nil
		}
		h := http.Header{}
		h.Set("Authorization", value)
		raw, present, err := cr.extract(h)
		switch {
		case errors.Is(err, errAmbiguousCredential):
			if !present || raw != "" || !strings.Contains(value, ",") {
				t.Fatalf("two credentials in %q: present=%v raw=%q", value, present, raw)
			}
			return
		case err != nil:
			if !present || raw != "" || !errors.Is(err, models.ErrTokenInvalid) || models.TokenReason(err) == "" {
				t.Fatalf("refusal %q present=%v err=%v", raw, present, err)
			}
			return
		case !present:
			if raw != "" {
				t.Fatalf("absent credential returned %q", raw)
			}
			return
		}
		if raw == "" || strings.ContainsAny(raw, " \t") && !bare || !strings.Contains(value, raw) || len(raw) > models.MaxTokenBytes+64 {
			t.Fatalf("extracted %q from %q", raw, value)
		}
		tok, err := models.PrecheckToken(raw, "user_id", 0, fuzzNow)
		if err != nil {
			if !errors.Is(err, models.ErrTokenInvalid) || models.TokenReason(err) == "" {
				t.Fatalf("pre-check error without a reason: %v", err)
			}
			return
		}
		if tok.UserID == "" || !tok.Expires.After(fuzzNow) || strings.EqualFold(tok.Alg, "none") {
			t.Fatalf("pre-checks accepted %q: %+v", raw, tok)
		}
	})
}

// fuzzRoutes covers plain, nested, exact, stripped and based upstreams.
var fuzzRoutes = []models.Route{
	{Name: "api", Path: "/api/", Upstream: "http://u1"},
	{Name: "billing", Path: "/api/billing/", Upstream: "http://u2/v1/"},
	{Name: "exact", Path: "/status", Upstream: "http://u3"},
	{Name: "strip", Path: "/s/", Upstream: "http://u4/root", StripPath: true},
	{Name: "strip-nested", Path: "/api/s/x/", Upstream: "http://u5", StripPath: true},
}

// covers is the reference rule, written independently of matchPrefix: a
// route covers a cleaned path equal to its prefix (without the trailing
// slash) or below it.
func covers(prefix, p string) bool {
	base := strings.TrimSuffix(prefix, "/")
	return p == base || strings.HasPrefix(p, base+"/")
}

// hasDotSegments reports "//", "." or ".." segments in a path.
func hasDotSegments(p string) bool {
	if strings.Contains(p, "//") {
		return true
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// FuzzRouteMatch: a request target as a client sends it (percent-encoding,
// "..", "//", long paths) is parsed by net/http as the server does, then
// cleaned and matched. The cleaned path has no dot segments and is stable;
// the route is the longest prefix that covers it (or none); forward-auth
// (X-Forwarded-Uri) decides the same; and the path sent upstream stays
// under the route's prefix (or the upstream's base path when stripped),
// the same after the upstream decodes it.
func FuzzRouteMatch(f *testing.F) {
	f.Add("/api/billing/x")
	table, err := newRouteTable(settingsCompiled(fuzzRoutes), http.DefaultTransport, nil, nil, newIdentity("X-User-"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: gw\r\n\r\n")))
		if err != nil {
			return // the server answers 400
		}
		clean, rt, why := table.resolve(req.URL.Path)
		if !strings.HasPrefix(clean, "/") || hasDotSegments(clean) || models.CleanPath(clean) != clean {
			t.Fatalf("CleanPath(%q) = %q", req.URL.Path, clean)
		}
		if p, apiErr := fwdPath(fwdTarget{uri: target, header: "X-Original-URI"}); apiErr == nil {
			if _, other, otherWhy := table.resolve(p); other != rt || (otherWhy == "") != (why == "") {
				t.Fatalf("forward-auth resolves %q to %v (%q), the proxy to %v (%q)", target, other, otherWhy, rt, why)
			}
		}
		if why != "" {
			return // refused with 400: nothing is forwarded
		}
		if bad := pathsReference(clean); bad != "" {
			t.Fatalf("%q (clean %q) accepted, but %s", target, clean, bad)
		}
		var want *models.Route
		for i := range fuzzRoutes {
			r := &fuzzRoutes[i]
			if covers(r.Path, clean) && (want == nil || len(r.Path) > len(want.Path)) {
				want = r
			}
		}
		switch {
		case rt == nil && want == nil:
			return
		case rt == nil || want == nil || rt.Name != want.Name:
			t.Fatalf("%q (clean %q) matched %v, want %v", target, clean, rt, want)
		}

		// What handleProxy forwards: the cleaned path, re-encoded.
		in := req.Clone(req.Context())
		in.URL.Path, in.URL.RawPath = clean, ""
		pr := &httputil.ProxyRequest{In: in, Out: in.Clone(in.Context())}
		rt.proxy.Rewrite(pr)
		up, _ := url.Parse(rt.Upstream)
		base := strings.TrimSuffix(up.Path, "/")
		out := pr.Out.URL.Path
		wantOut := base + clean
		if rt.StripPath {
			rest := strings.TrimPrefix(clean, strings.TrimSuffix(rt.Path, "/"))
			wantOut = base + "/" + strings.TrimPrefix(rest, "/")
		}
		if out != wantOut && !(out == wantOut+"/" || wantOut == out+"/") {
			t.Fatalf("%q (clean %q) forwarded as %q, want %q", target, clean, out, wantOut)
		}
		if hasDotSegments(strings.TrimPrefix(out, base)) {
			t.Fatalf("%q forwarded with dot segments: %q", target, out)
		}
		if !rt.StripPath && !covers(rt.Path, strings.TrimPrefix(out, base)) {
			t.Fatalf("%q forwarded outside route %s: %q", target, rt.Path, out)
		}
		// The upstream decodes the escaped path to what we matched.
		sent, err := url.ParseRequestURI(pr.Out.URL.RequestURI())
		if err != nil || sent.Path != out {
			t.Fatalf("%q forwarded as %q, which the upstream reads as %q (%v)", target, pr.Out.URL.RequestURI(), sent.Path, err)
		}
	})
}

// pathsReference is the reference rule for paths the gateway accepts,
// written independently of models.UnusualPath and PathReadings: it names
// what a lenient upstream could read differently in a cleaned path, at the
// gateway's decoding and one more, or returns "".
func pathsReference(clean string) string {
	layers := []string{clean}
	if again, err := url.PathUnescape(clean); err == nil && again != clean {
		layers = append(layers, again)
	}
	want := ""
	for _, r := range fuzzRoutes {
		if covers(r.Path, clean) && len(r.Path) > len(want) {
			want = r.Path
		}
	}
	for _, p := range layers {
		if !utf8.ValidString(p) {
			return "it is not UTF-8"
		}
		if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' || r == '\uFF3C' }) {
			return "it holds a control character or a backslash"
		}
		var lenient []string
		for seg := range strings.SplitSeq(strings.NewReplacer("\u2024", ".", "\uFF0E", ".", "\u3002", ".", "\uFF0F", "/").Replace(p), "/") {
			seg, _, _ = strings.Cut(seg, ";")
			seg = strings.TrimRight(seg, " ")
			if seg != "" && strings.Trim(seg, ".") == "" {
				return "a segment is read as dots"
			}
			lenient = append(lenient, strings.ToLower(strings.TrimRight(seg, ".")))
		}
		got, read := "", path.Clean("/"+strings.Join(lenient, "/"))
		for _, r := range fuzzRoutes {
			if covers(strings.ToLower(r.Path), read) && len(r.Path) > len(got) {
				got = r.Path
			}
		}
		if got != want {
			return "a lenient upstream reads it as " + read + ", under route " + got + ", not " + want
		}
	}
	return ""
}

// foldName is the reference folding of a header name as an upstream may
// read it (CGI/WSGI: case-insensitive, '_' and '.' for '-').
func foldName(s string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(s))
}

// FuzzIdentityStrip: whatever header lines a client sends, after strip and
// set the request the upstream parses carries, in the identity namespace,
// exactly the gateway's headers with the gateway's values.
func FuzzIdentityStrip(f *testing.F) {
	f.Add("X-User-Id: 1\r\nx_user_is_staff: true", uint8(0))
	prefixes := []string{"X-User-", "X-Auth-Request-", "Remote-", "x_forwarded_user_"}
	user := &models.User{ID: "42", Email: "a@example.com", Username: "alice", IsStaff: false}
	f.Fuzz(func(t *testing.T, lines string, which uint8) {
		prefix := prefixes[int(which)%len(prefixes)]
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /api/x HTTP/1.1\r\nHost: gw\r\n" + lines + "\r\n\r\n")))
		if err != nil {
			return
		}
		idn := newIdentity(prefix)
		idn.strip(req.Header)
		norm := foldName(prefix)
		for k := range req.Header {
			if strings.HasPrefix(foldName(k), norm) {
				t.Fatalf("prefix %q: %q survived strip", prefix, k)
			}
		}
		p := &authn.Principal{User: user, Attrs: user.Attributes()}
		if err := idn.set(req.Header, p, &route{}); err != nil {
			t.Fatal(err)
		}
		// Serialise as the proxy does and parse as the upstream does.
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			return // net/http refuses to send it: nothing reaches the upstream
		}
		got, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			t.Fatalf("the upstream cannot parse what the gateway sends: %v\n%q", err, wire.String())
		}
		want := map[string]string{
			idn.id: "42", idn.email: "a@example.com", idn.username: "alice",
			idn.staff: "false", idn.superuser: "false",
		}
		for k, vs := range got.Header {
			if !strings.HasPrefix(foldName(k), norm) {
				continue
			}
			if w, ok := want[k]; !ok || len(vs) != 1 || vs[0] != w {
				t.Fatalf("prefix %q: upstream got %q: %q", prefix, k, vs)
			}
		}
		if len(got.Header.Values(idn.id)) != 1 {
			t.Fatalf("upstream lost %s: %v", idn.id, got.Header)
		}
	})
}

// TestFuzzHelpers pins the reference rules the fuzz targets compare with.
func TestFuzzHelpers(t *testing.T) {
	if !covers("/api/", "/api") || !covers("/api/", "/api/x") || covers("/api/", "/apix") || !covers("/", "/x") {
		t.Fatal("covers")
	}
	if !hasDotSegments("/a/../b") || !hasDotSegments("/a//b") || hasDotSegments("/a/..b/") || !hasDotSegments("/.") {
		t.Fatal("hasDotSegments")
	}
	if foldName("X_User.ID") != "x-user-id" || path.Clean("/a/") != "/a" {
		t.Fatal("foldName")
	}
}
