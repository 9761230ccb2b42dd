package fakeauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/tests/fakeauth"
)

// reply is a response read in full.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v; body=%q", err, r.body)
	}
	return m
}

// newClient returns a client with bounded waits that does not follow redirects.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// try sends one request; header holds name, value pairs.
func try(ctx context.Context, c *http.Client, method, u, ctype, body string, header ...string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{resp.StatusCode, resp.Header, string(b)}, nil
}

func send(t *testing.T, c *http.Client, method, u, ctype, body string, header ...string) reply {
	t.Helper()
	r, err := try(t.Context(), c, method, u, ctype, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return r
}

func postJSON(t *testing.T, c *http.Client, s *fakeauth.Server, path string, body any) reply {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, c, http.MethodPost, s.URL()+path, "application/json", string(b))
}

func getUser(t *testing.T, c *http.Client, s *fakeauth.Server, path, access string) reply {
	t.Helper()
	return send(t, c, http.MethodGet, s.URL()+path, "", "", "Authorization", "Bearer "+access)
}

func wantReply(t *testing.T, got reply, status int, body string) {
	t.Helper()
	if got.status != status || (body != "" && got.body != body) {
		t.Fatalf("got %d %s\nwant %d %s", got.status, got.body, status, body)
	}
}

// claimsOf decodes a token's claims without verifying it.
func claimsOf(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser(jwt.WithJSONNumber()).ParseUnverified(tok, c); err != nil {
		t.Fatalf("parse %q: %v", tok, err)
	}
	return c
}

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)} }

const wrongCreds = `{"detail":"No active account found with the given credentials"}`

func TestLogin(t *testing.T) {
	clk := newClock()
	s := fakeauth.Start(t, fakeauth.Options{Now: clk.Now})
	c := newClient(t)
	ann := s.AddUser(fakeauth.User{Email: "ann@example.com", Password: "s3cret"})
	bob := s.AddUser(fakeauth.User{Email: "bob@example.com", Password: "s3cret"})
	s.UpdateUser(bob.ID, func(u *fakeauth.User) { u.IsActive = false })

	const jsonCT, formCT = "application/json", "application/x-www-form-urlencoded"
	tests := []struct {
		name, ctype, body string
		header            []string
		want              int
		wantBody          string // exact; "" for a successful login, checked separately
		wantPrefix        string
	}{
		{name: "json", ctype: jsonCT, body: `{"email":"ann@example.com","password":"s3cret"}`, want: 200},
		{name: "json charset", ctype: "application/json; charset=utf-8", body: `{"email":"ann@example.com","password":"s3cret"}`, want: 200},
		{name: "form", ctype: formCT, body: "email=ann%40example.com&password=s3cret", want: 200},
		{name: "whitespace trimmed like DRF", ctype: jsonCT, body: `{"email":" ann@example.com ","password":"s3cret "}`, want: 200},
		{name: "stale authorization header ignored", ctype: jsonCT, body: `{"email":"ann@example.com","password":"s3cret"}`, header: []string{"Authorization", "Bearer expired.garbage.token"}, want: 200},
		{name: "wrong password", ctype: jsonCT, body: `{"email":"ann@example.com","password":"nope"}`, want: 401, wantBody: wrongCreds},
		{name: "unknown email", ctype: jsonCT, body: `{"email":"zed@example.com","password":"s3cret"}`, want: 401, wantBody: wrongCreds},
		{name: "email is case-sensitive", ctype: jsonCT, body: `{"email":"ANN@example.com","password":"s3cret"}`, want: 401, wantBody: wrongCreds},
		{name: "inactive user", ctype: jsonCT, body: `{"email":"bob@example.com","password":"s3cret"}`, want: 401, wantBody: wrongCreds},
		{name: "wrong password form", ctype: formCT, body: "email=ann%40example.com&password=x", want: 401, wantBody: wrongCreds},
		{name: "missing email", ctype: jsonCT, body: `{"password":"s3cret"}`, want: 400, wantBody: `{"email":["This field is required."]}`},
		{name: "missing both", ctype: jsonCT, body: `{}`, want: 400, wantBody: `{"email":["This field is required."],"password":["This field is required."]}`},
		{name: "empty body", ctype: jsonCT, body: ``, want: 400, wantBody: `{"email":["This field is required."],"password":["This field is required."]}`},
		{name: "missing password form", ctype: formCT, body: "email=ann%40example.com", want: 400, wantBody: `{"password":["This field is required."]}`},
		{name: "blank and null", ctype: jsonCT, body: `{"email":"  ","password":null}`, want: 400, wantBody: `{"email":["This field may not be blank."],"password":["This field may not be null."]}`},
		{name: "not a string", ctype: jsonCT, body: `{"email":true,"password":"x"}`, want: 400, wantBody: `{"email":["Not a valid string."]}`},
		{name: "truncated json", ctype: jsonCT, body: `{"email": `, want: 400, wantBody: `{"detail":"JSON parse error - Expecting value: line 1 column 11 (char 10)"}`},
		{name: "malformed json", ctype: jsonCT, body: `{email: "x"}`, want: 400, wantPrefix: `{"detail":"JSON parse error - `},
		{name: "json list", ctype: jsonCT, body: `[1]`, want: 400, wantBody: `{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}`},
		{name: "json null", ctype: jsonCT, body: `null`, want: 400, wantBody: `{"non_field_errors":["No data provided"]}`},
		{name: "unsupported media type", ctype: "text/plain", body: `email=x`, want: 415, wantBody: `{"detail":"Unsupported media type \"text/plain\" in request."}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, c, http.MethodPost, s.URL()+fakeauth.PathObtain, tt.ctype, tt.body, tt.header...)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			switch {
			case tt.want == 200:
				wantReply(t, r, 200, "")
				m := r.json(t)
				access, _ := m["access"].(string)
				refresh, _ := m["refresh"].(string)
				if access == "" || refresh == "" || access == refresh || len(m) != 2 {
					t.Fatalf("want distinct access and refresh only, got %s", r.body)
				}
				if typ := claimsOf(t, access)["token_type"]; typ != "access" {
					t.Errorf("access token_type = %v", typ)
				}
				if typ := claimsOf(t, refresh)["token_type"]; typ != "refresh" {
					t.Errorf("refresh token_type = %v", typ)
				}
			case tt.wantPrefix != "":
				if r.status != tt.want || !strings.HasPrefix(r.body, tt.wantPrefix) {
					t.Fatalf("got %d %s, want %d %s...", r.status, r.body, tt.want, tt.wantPrefix)
				}
			default:
				wantReply(t, r, tt.want, tt.wantBody)
			}
			if got := r.header.Get("WWW-Authenticate"); (r.status == 401) != (got == `Bearer realm="api"`) {
				t.Errorf("status %d with WWW-Authenticate %q", r.status, got)
			}
		})
	}

	t.Run("last login updated", func(t *testing.T) {
		clk.Advance(time.Hour)
		postJSON(t, c, s, fakeauth.PathObtain, map[string]string{"email": "ann@example.com", "password": "s3cret"})
		u, _ := s.User(ann.ID)
		if u.LastLogin == nil || !u.LastLogin.Equal(clk.Now()) {
			t.Fatalf("LastLogin = %v, want %v", u.LastLogin, clk.Now())
		}
	})
	t.Run("method not allowed", func(t *testing.T) {
		r := send(t, c, http.MethodGet, s.URL()+fakeauth.PathObtain, "", "")
		wantReply(t, r, 405, `{"detail":"Method \"GET\" not allowed."}`)
		if got := r.header.Get("Allow"); got != "POST, OPTIONS" {
			t.Errorf("Allow = %q", got)
		}
	})
	t.Run("missing slash redirects like APPEND_SLASH", func(t *testing.T) {
		r := send(t, c, http.MethodPost, s.URL()+"/auth/token", "application/json", `{}`)
		if r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/auth/token/" {
			t.Fatalf("got %d Location=%q", r.status, r.header.Get("Location"))
		}
	})
	t.Run("unknown path is Django's HTML 404", func(t *testing.T) {
		r := send(t, c, http.MethodPost, s.URL()+"/auth/nope/", "application/json", `{}`)
		if r.status != 404 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(r.body, "<h1>Not Found</h1>") {
			t.Fatalf("got %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
		}
	})
}

func TestLoginByUsername(t *testing.T) {
	s := fakeauth.Start(t, fakeauth.Options{UsernameField: "username"})
	c := newClient(t)
	s.AddUser(fakeauth.User{Username: "ann", Email: "ann@example.com", Password: "pw"})
	wantReply(t, postJSON(t, c, s, fakeauth.PathObtain, map[string]string{"username": "ann", "password": "pw"}), 200, "")
	wantReply(t, postJSON(t, c, s, fakeauth.PathObtain, map[string]string{"email": "ann@example.com", "password": "pw"}),
		400, `{"username":["This field is required."]}`)
}

func TestVerify(t *testing.T) {
	clk := newClock()
	s := fakeauth.Start(t, fakeauth.Options{Now: clk.Now})
	c := newClient(t)
	ann := s.AddUser(fakeauth.User{Email: "ann@example.com", Password: "pw"})
	access, refresh := s.IssuePair(ann.ID)
	goneAccess, _ := s.IssuePair(404) // no such user: verify does not care
	inactive := s.AddUser(fakeauth.User{Email: "ina@example.com"})
	s.UpdateUser(inactive.ID, func(u *fakeauth.User) { u.IsActive = false })
	inactiveAccess, _ := s.IssuePair(inactive.ID)
	_, revoked := s.IssuePair(ann.ID)
	wantReply(t, postJSON(t, c, s, fakeauth.PathBlacklist, map[string]string{"refresh": revoked}), 200, `{}`)

	other := fakeauth.Start(t, fakeauth.Options{}) // another secret
	foreign, _ := other.IssuePair(ann.ID)
	noJTI := s.NewClaims(ann.ID, fakeauth.TypeAccess)
	delete(noJTI, "jti")
	noExp := s.NewClaims(ann.ID, fakeauth.TypeAccess)
	delete(noExp, "exp")
	stale := s.NewClaims(ann.ID, fakeauth.TypeAccess)
	stale["exp"] = clk.Now().Add(-time.Second).Unix()
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, s.NewClaims(ann.ID, fakeauth.TypeAccess)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	const invalid = `{"detail":"Token is invalid or expired","code":"token_not_valid"}`

	tests := []struct {
		name, token string
		want        int
		wantBody    string
	}{
		{"access", access, 200, `{}`},
		{"refresh token passes too (the SimpleJWT trap)", refresh, 200, `{}`},
		{"deleted user still passes", goneAccess, 200, `{}`},
		{"inactive user still passes", inactiveAccess, 200, `{}`},
		{"blacklisted refresh", revoked, 401, `{"detail":"Token is blacklisted","code":"token_not_valid"}`},
		{"garbage", "not.a.jwt", 401, invalid},
		{"other secret", foreign, 401, invalid},
		{"alg none", unsigned, 401, invalid},
		{"expired", s.Sign(stale), 401, invalid},
		{"no jti", s.Sign(noJTI), 401, `{"detail":"Token has no id","code":"token_not_valid"}`},
		{"no exp", s.Sign(noExp), 401, `{"detail":"Token has no 'exp' claim","code":"token_not_valid"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": tt.token})
			wantReply(t, r, tt.want, tt.wantBody)
			if r.status == 401 && r.header.Get("WWW-Authenticate") != `Bearer realm="api"` {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("missing field", func(t *testing.T) {
		wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{}), 400, `{"token":["This field is required."]}`)
	})
	t.Run("access expires after AccessTTL", func(t *testing.T) {
		clk.Advance(5*time.Minute + time.Second)
		wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": access}), 401, invalid)
		wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": refresh}), 200, `{}`)
	})
}

func TestTokenErrorVariants(t *testing.T) {
	clk := newClock()
	s := fakeauth.Start(t, fakeauth.Options{Now: clk.Now, SplitTokenErrors: true, VerifyBlacklist400: true})
	c := newClient(t)
	access, refresh := s.IssuePair(1)
	wantReply(t, postJSON(t, c, s, fakeauth.PathBlacklist, map[string]string{"refresh": refresh}), 200, `{}`)
	wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": refresh}), 400, `{"non_field_errors":["Token is blacklisted"]}`)
	wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": "x"}), 401, `{"detail":"Token is invalid","code":"token_not_valid"}`)
	clk.Advance(time.Hour)
	wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": access}), 401, `{"detail":"Token is expired","code":"token_not_valid"}`)
}

func TestRefresh(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "rotate"}[rotate], func(t *testing.T) {
			s := fakeauth.Start(t, fakeauth.Options{Rotate: rotate})
			c := newClient(t)
			ann := s.AddUser(fakeauth.User{Email: "ann@example.com", Password: "pw"})
			_, refresh := s.IssuePair(ann.ID)

			r := postJSON(t, c, s, fakeauth.PathRefresh, map[string]string{"refresh": refresh})
			wantReply(t, r, 200, "")
			m := r.json(t)
			access, _ := m["access"].(string)
			newRefresh, hasRefresh := m["refresh"].(string)
			if hasRefresh != rotate || (rotate && newRefresh == refresh) {
				t.Fatalf("rotate=%v, body %s", rotate, r.body)
			}
			wantReply(t, getUser(t, c, s, fakeauth.PathMe, access), 200, "")

			again := postJSON(t, c, s, fakeauth.PathRefresh, map[string]string{"refresh": refresh})
			if !rotate {
				wantReply(t, again, 200, "")
				return
			}
			wantReply(t, again, 401, `{"detail":"Token is blacklisted","code":"token_not_valid"}`)
			if !s.Blacklisted(refresh) || s.Blacklisted(newRefresh) {
				t.Errorf("Blacklisted(old)=%v Blacklisted(new)=%v", s.Blacklisted(refresh), s.Blacklisted(newRefresh))
			}
			wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": refresh}), 401, "")
			wantReply(t, postJSON(t, c, s, fakeauth.PathRefresh, map[string]string{"refresh": newRefresh}), 200, "")
			// Blacklisting a refresh token leaves its access tokens alive until exp.
			wantReply(t, getUser(t, c, s, fakeauth.PathMe, access), 200, "")
		})
	}

	clk := newClock()
	s := fakeauth.Start(t, fakeauth.Options{Now: clk.Now})
	c := newClient(t)
	ann := s.AddUser(fakeauth.User{Email: "ann@example.com"})
	gone := s.AddUser(fakeauth.User{Email: "gone@example.com"})
	ina := s.AddUser(fakeauth.User{Email: "ina@example.com"})
	access, _ := s.IssuePair(ann.ID)
	_, goneRefresh := s.IssuePair(gone.ID)
	_, inaRefresh := s.IssuePair(ina.ID)
	s.DeleteUser(gone.ID)
	s.UpdateUser(ina.ID, func(u *fakeauth.User) { u.IsActive = false })
	old := s.NewClaims(ann.ID, fakeauth.TypeRefresh)
	old["exp"] = clk.Now().Add(-time.Minute).Unix()

	tests := []struct {
		name, token string
		want        int
		wantBody    string
	}{
		{"access token", access, 401, `{"detail":"Token has wrong type","code":"token_not_valid"}`},
		{"expired", s.Sign(old), 401, `{"detail":"Token is invalid or expired","code":"token_not_valid"}`},
		{"garbage", "abc", 401, `{"detail":"Token is invalid or expired","code":"token_not_valid"}`},
		{"inactive user", inaRefresh, 401, `{"detail":"No active account found for the given token."}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantReply(t, postJSON(t, c, s, fakeauth.PathRefresh, map[string]string{"refresh": tt.token}), tt.want, tt.wantBody)
		})
	}
	t.Run("deleted user is SimpleJWT 5.5's unhandled 500", func(t *testing.T) {
		r := postJSON(t, c, s, fakeauth.PathRefresh, map[string]string{"refresh": goneRefresh})
		if r.status != 500 || !strings.Contains(r.body, "Server Error (500)") {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("access keeps the refresh token's iat", func(t *testing.T) {
		_, refresh := s.IssuePair(ann.ID)
		clk.Advance(time.Minute)
		r := postJSON(t, c, s, fakeauth.PathRefresh, map[string]string{"refresh": refresh})
		got := claimsOf(t, r.json(t)["access"].(string))
		if got["iat"] != claimsOf(t, refresh)["iat"] || got["token_type"] != "access" {
			t.Fatalf("access claims %v", got)
		}
	})
}

func TestBlacklistEndpoint(t *testing.T) {
	s := fakeauth.Start(t, fakeauth.Options{})
	c := newClient(t)
	access, refresh := s.IssuePair(1)
	wantReply(t, postJSON(t, c, s, fakeauth.PathBlacklist, map[string]string{"refresh": access}), 401, `{"detail":"Token has wrong type","code":"token_not_valid"}`)
	wantReply(t, postJSON(t, c, s, fakeauth.PathBlacklist, map[string]string{"refresh": refresh}), 200, `{}`)
	wantReply(t, postJSON(t, c, s, fakeauth.PathBlacklist, map[string]string{"refresh": refresh}), 401, `{"detail":"Token is blacklisted","code":"token_not_valid"}`)
	wantReply(t, postJSON(t, c, s, fakeauth.PathRefresh, map[string]string{"refresh": refresh}), 401, `{"detail":"Token is blacklisted","code":"token_not_valid"}`)
}

func TestUserEndpoints(t *testing.T) {
	joined := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := fakeauth.Start(t, fakeauth.Options{})
	c := newClient(t)
	ann := s.AddUser(fakeauth.User{ID: 42, Email: "ann@example.com", Username: "ann", FirstName: "Ann", LastName: "Lee",
		DateJoined: joined, Extra: map[string]any{"services": []string{"billing"}, "tenant": "acme"}})
	bob := s.AddUser(fakeauth.User{Email: "bob@example.com"})
	admin := s.AddUser(fakeauth.User{Email: "admin@example.com", IsStaff: true})
	gone := s.AddUser(fakeauth.User{Email: "gone@example.com"})
	ina := s.AddUser(fakeauth.User{Email: "ina@example.com"})
	if bob.ID != 43 || !bob.IsActive {
		t.Fatalf("auto id/active: %+v", bob)
	}
	annAccess, annRefresh := s.IssuePair(ann.ID)
	adminAccess, _ := s.IssuePair(admin.ID)
	goneAccess, _ := s.IssuePair(gone.ID)
	inaAccess, _ := s.IssuePair(ina.ID)
	s.DeleteUser(gone.ID)
	s.UpdateUser(ina.ID, func(u *fakeauth.User) { u.IsActive = false })
	noUID := s.NewClaims(ann.ID, fakeauth.TypeAccess)
	delete(noUID, "user_id")

	const annRecord = `{"id":42,"email":"ann@example.com","username":"ann","first_name":"Ann","last_name":"Lee",` +
		`"date_joined":"2024-01-01T21:04:05-06:00","last_login":null,"is_active":true,"is_staff":false,"is_superuser":false,` +
		`"services":["billing"],"tenant":"acme"}`
	const notFound = `{"detail":"Not found."}`
	const notProvided = `{"detail":"Authentication credentials were not provided."}`
	bad := func(msg string) string {
		return `{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken","token_type":"access","message":"` + msg + `"}]}`
	}
	users := func(id int64) string { return fakeauth.PathUsers + strconv.FormatInt(id, 10) + "/" }

	tests := []struct {
		name, method, path, auth string
		want                     int
		wantBody                 string
	}{
		{"own record by id", "GET", users(ann.ID), "Bearer " + annAccess, 200, annRecord},
		{"own record /auth/user/", "GET", fakeauth.PathMe, "Bearer " + annAccess, 200, annRecord},
		{"other user, not staff", "GET", users(bob.ID), "Bearer " + annAccess, 404, notFound},
		{"unknown id, not staff", "GET", users(999), "Bearer " + annAccess, 404, notFound},
		{"staff reads any id", "GET", users(ann.ID), "Bearer " + adminAccess, 200, annRecord},
		{"staff, unknown id", "GET", users(999), "Bearer " + adminAccess, 404, notFound},
		{"no header", "GET", fakeauth.PathMe, "", 401, notProvided},
		{"not a bearer header", "GET", fakeauth.PathMe, "Basic YTpi", 401, notProvided},
		{"lowercase bearer is not recognised", "GET", fakeauth.PathMe, "bearer " + annAccess, 401, notProvided},
		{"three parts", "GET", fakeauth.PathMe, "Bearer a b", 401, `{"detail":"Authorization header must contain two space-delimited values","code":"bad_authorization_header"}`},
		{"garbage token", "GET", fakeauth.PathMe, "Bearer xyz", 401, bad("Token is invalid or expired")},
		{"refresh token as access", "GET", fakeauth.PathMe, "Bearer " + annRefresh, 401, bad("Token has wrong type")},
		{"no user id claim", "GET", fakeauth.PathMe, "Bearer " + s.Sign(noUID), 401, `{"detail":"Token contained no recognizable user identification","code":"token_not_valid"}`},
		{"deleted user", "GET", fakeauth.PathMe, "Bearer " + goneAccess, 401, `{"detail":"User not found","code":"user_not_found"}`},
		{"inactive user", "GET", users(ina.ID), "Bearer " + inaAccess, 401, `{"detail":"User is inactive","code":"user_inactive"}`},
		{"POST authenticated", "POST", fakeauth.PathMe, "Bearer " + annAccess, 405, `{"detail":"Method \"POST\" not allowed."}`},
		{"POST unauthenticated: auth runs first", "POST", fakeauth.PathMe, "", 401, notProvided},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			r := send(t, c, tt.method, s.URL()+tt.path, "", "", hdr...)
			wantReply(t, r, tt.want, tt.wantBody)
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
			}
			if got := r.header.Get("WWW-Authenticate"); (r.status == 401) != (got == `Bearer realm="api"`) {
				t.Errorf("status %d with WWW-Authenticate %q", r.status, got)
			}
		})
	}
	t.Run("non-numeric id is Django's HTML 404", func(t *testing.T) {
		r := getUser(t, c, s, fakeauth.PathUsers+"abc/", annAccess)
		if r.status != 404 || !strings.Contains(r.body, "<h1>Not Found</h1>") {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("last login and email change show up", func(t *testing.T) {
		login := time.Date(2025, 6, 7, 8, 9, 10, 123456000, time.UTC)
		s.UpdateUser(ann.ID, func(u *fakeauth.User) { u.Email = "ann@new.example.com"; u.LastLogin = &login })
		m := getUser(t, c, s, fakeauth.PathMe, annAccess).json(t)
		if m["email"] != "ann@new.example.com" || m["last_login"] != "2025-06-07T02:09:10.123456-06:00" {
			t.Fatalf("record %v", m)
		}
	})
	t.Run("other user 403 variant", func(t *testing.T) {
		s2 := fakeauth.Start(t, fakeauth.Options{OtherUser403: true, Secret: s.Secret()})
		s2.AddUser(fakeauth.User{ID: ann.ID, Email: "ann@example.com"})
		wantReply(t, getUser(t, c, s2, users(7), annAccess), 403, `{"detail":"You do not have permission to perform this action."}`)
	})
}

func TestUserIDClaim(t *testing.T) {
	tests := []struct {
		name     string
		opt      fakeauth.Options
		claim    string
		wantType string
	}{
		{"number (SimpleJWT < 5.5.1)", fakeauth.Options{}, "user_id", "number"},
		{"string (SimpleJWT >= 5.5.1)", fakeauth.Options{StringUserID: true}, "user_id", "string"},
		{"custom claim", fakeauth.Options{UserIDClaim: "uid", StringUserID: true}, "uid", "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeauth.Start(t, tt.opt)
			c := newClient(t)
			u := s.AddUser(fakeauth.User{Email: "ann@example.com", Password: "pw"})
			r := postJSON(t, c, s, fakeauth.PathObtain, map[string]string{"email": "ann@example.com", "password": "pw"})
			access := r.json(t)["access"].(string)
			v := claimsOf(t, access)[tt.claim]
			switch x := v.(type) {
			case json.Number:
				if tt.wantType != "number" || x.String() != "1" {
					t.Fatalf("claim %s = %v (number), want %s", tt.claim, v, tt.wantType)
				}
			case string:
				if tt.wantType != "string" || x != "1" {
					t.Fatalf("claim %s = %q (string), want %s", tt.claim, x, tt.wantType)
				}
			default:
				t.Fatalf("claim %s = %#v", tt.claim, v)
			}
			wantReply(t, getUser(t, c, s, fakeauth.PathMe, access), 200, "")
			// Either form is accepted whatever the server mints, as Django's lookup is.
			for _, id := range []any{u.ID, "1"} {
				cl := s.NewClaims(u.ID, fakeauth.TypeAccess)
				cl[tt.claim] = id
				wantReply(t, getUser(t, c, s, fakeauth.PathMe, s.Sign(cl)), 200, "")
			}
		})
	}
}

func TestIssuerAudience(t *testing.T) {
	s := fakeauth.Start(t, fakeauth.Options{Issuer: "auth.internal", Audience: "jwtgate"})
	c := newClient(t)
	access, _ := s.IssuePair(1)
	cl := claimsOf(t, access)
	if cl["iss"] != "auth.internal" || cl["aud"] != "jwtgate" {
		t.Fatalf("claims %v", cl)
	}
	wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": access}), 200, `{}`)
	for _, k := range []string{"iss", "aud"} {
		cl := s.NewClaims(1, fakeauth.TypeAccess)
		delete(cl, k)
		wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": s.Sign(cl)}), 401, "")
	}
}

func TestTokensAreUnique(t *testing.T) {
	clk := newClock() // frozen: every token is minted in the same second
	s := fakeauth.Start(t, fakeauth.Options{Now: clk.Now})
	seen := map[string]bool{}
	for range 3 {
		a, r := s.IssuePair(1)
		for _, tok := range []string{a, r} {
			if seen[tok] {
				t.Fatal("token minted twice")
			}
			seen[tok] = true
			if jti, _ := claimsOf(t, tok)["jti"].(string); len(jti) != 32 {
				t.Fatalf("jti %q, want 32 hex digits", jti)
			}
		}
	}
	cl := claimsOf(t, func() string { a, _ := s.IssuePair(1); return a }())
	exp, _ := cl["exp"].(json.Number).Int64()
	iat, _ := cl["iat"].(json.Number).Int64()
	if exp-iat != 300 || iat != clk.Now().Unix() {
		t.Fatalf("iat %d exp %d", iat, exp)
	}
}

func TestCounters(t *testing.T) {
	s := fakeauth.Start(t, fakeauth.Options{})
	c := newClient(t)
	access, _ := s.IssuePair(1)
	postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": access})
	postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": "bad"})
	postJSON(t, c, s, fakeauth.PathObtain, map[string]string{})
	send(t, c, http.MethodGet, s.URL()+"/nope", "", "")

	want := map[string]int64{fakeauth.PathVerify: 2, fakeauth.PathObtain: 1, "/nope": 1, fakeauth.PathRefresh: 0}
	for path, n := range want {
		if got := s.Calls(path); got != n {
			t.Errorf("Calls(%q) = %d, want %d", path, got, n)
		}
	}
	if s.TotalCalls() != 4 {
		t.Errorf("TotalCalls = %d, want 4", s.TotalCalls())
	}
	s.ResetCalls()
	if s.TotalCalls() != 0 || s.Calls(fakeauth.PathVerify) != 0 || len(s.CallCounts()) != 0 {
		t.Fatalf("after reset: total %d, %v", s.TotalCalls(), s.CallCounts())
	}

	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := try(t.Context(), c, http.MethodPost, s.URL()+fakeauth.PathVerify, "application/json", `{"token":"`+access+`"}`); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := s.Calls(fakeauth.PathVerify); got != n {
		t.Fatalf("concurrent: Calls = %d, want %d", got, n)
	}
}

func TestSetDelay(t *testing.T) {
	s := fakeauth.Start(t, fakeauth.Options{})
	c := newClient(t)
	access, _ := s.IssuePair(1)
	verify := func(ctx context.Context) (reply, error) {
		return try(ctx, c, http.MethodPost, s.URL()+fakeauth.PathVerify, "application/json", `{"token":"`+access+`"}`)
	}

	s.SetDelay(200 * time.Millisecond)
	start := time.Now()
	r, err := verify(t.Context())
	if err != nil || r.status != 200 {
		t.Fatalf("delayed call: %v %+v", err, r)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("answered after %v, want >= 200ms", el)
	}

	t.Run("client timeout cancels the wait", func(t *testing.T) {
		s.SetDelay(time.Minute)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := verify(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	})
	t.Run("Stop cuts delayed requests off", func(t *testing.T) {
		s.SetDelay(time.Minute)
		done := make(chan error, 1)
		go func() { _, err := verify(t.Context()); done <- err }()
		waitFor(t, func() bool { return s.Calls(fakeauth.PathVerify) == 3 })
		start := time.Now()
		s.Stop()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("delayed request got a response after Stop")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("delayed request still hanging after Stop")
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("Stop took %v", el)
		}
		s.SetDelay(0)
		s.Restart()
		if r, err := verify(t.Context()); err != nil || r.status != 200 {
			t.Fatalf("after restart: %v %+v", err, r)
		}
	})
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		mode  fakeauth.Failure
		wants []int // statuses of consecutive calls; 0 means no response at all
	}{
		{fakeauth.FailNone, []int{200, 200}},
		{fakeauth.Fail500, []int{500, 500, 500}},
		{fakeauth.FailFlapping, []int{500, 200, 500, 200}},
		{fakeauth.FailHangup, []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			s := fakeauth.Start(t, fakeauth.Options{})
			c := newClient(t)
			access, _ := s.IssuePair(1)
			s.SetFailure(tt.mode)
			for i, want := range tt.wants {
				r, err := try(t.Context(), c, http.MethodPost, s.URL()+fakeauth.PathVerify, "application/json", `{"token":"`+access+`"}`)
				switch {
				case want == 0:
					if err == nil {
						t.Fatalf("call %d: got %d, want the connection dropped", i, r.status)
					}
				case err != nil:
					t.Fatalf("call %d: %v", i, err)
				case r.status != want:
					t.Fatalf("call %d: status %d, want %d", i, r.status, want)
				case want == 500 && (!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(r.body, "<h1>Server Error (500)</h1>")):
					t.Fatalf("call %d: 500 page %q %s", i, r.header.Get("Content-Type"), r.body)
				}
			}
			if got := s.Calls(fakeauth.PathVerify); got != int64(len(tt.wants)) {
				t.Fatalf("Calls = %d, want %d (failures are counted)", got, len(tt.wants))
			}
			s.SetFailure(fakeauth.FailNone)
			wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": access}), 200, `{}`)
		})
	}
}

func TestStopRestart(t *testing.T) {
	s := fakeauth.Start(t, fakeauth.Options{})
	c := newClient(t)
	access, _ := s.IssuePair(1)
	url0 := s.URL()
	wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": access}), 200, `{}`)

	s.Stop()
	s.Stop() // idempotent
	if s.Running() {
		t.Fatal("Running after Stop")
	}
	u, _ := url.Parse(s.URL())
	conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(t.Context(), "tcp", u.Host)
	if err == nil {
		conn.Close()
		t.Fatal("dial succeeded after Stop")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial error %v, want connection refused", err)
	}
	if _, err := try(t.Context(), c, http.MethodPost, s.URL()+fakeauth.PathVerify, "application/json", `{}`); err == nil {
		t.Fatal("request succeeded after Stop")
	}

	s.Restart()
	if s.URL() != url0 {
		t.Fatalf("URL changed: %s -> %s", url0, s.URL())
	}
	wantReply(t, postJSON(t, c, s, fakeauth.PathVerify, map[string]string{"token": access}), 200, `{}`)
	if got := s.Calls(fakeauth.PathVerify); got != 2 {
		t.Fatalf("Calls = %d, want 2 (counters survive a restart)", got)
	}

	s.Close()
	if err := s.TryRestart(); err == nil {
		t.Fatal("TryRestart after Close succeeded")
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opt  fakeauth.Options
	}{
		{"username field", fakeauth.Options{UsernameField: "phone"}},
		{"negative ttl", fakeauth.Options{AccessTTL: -time.Second}},
		{"reserved claim", fakeauth.Options{UserIDClaim: "exp"}},
		{"bad address", fakeauth.Options{Addr: "256.0.0.1:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := fakeauth.New(tt.opt)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestAddUserDuplicatePanics(t *testing.T) {
	s := fakeauth.Start(t, fakeauth.Options{})
	s.AddUser(fakeauth.User{Email: "ann@example.com"})
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate email accepted")
		}
	}()
	s.AddUser(fakeauth.User{Email: "ann@example.com"})
}
