package djangoauth_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"jwtgate/tests/djangoauth"
)

// These tests pin what SimpleJWT 5.2.2 says on the wire (see
// /work/shared/design/simplejwt-wire.md), so the gateway's tests can rely on
// the service behaving the same way.

const (
	notFound     = `{"detail": "Not found."}`
	noAccount    = `{"detail": "No active account found with the given credentials"}`
	invalidToken = `{"detail": "Token is invalid or expired", "code": "token_not_valid"}`
	blacklisted  = `{"detail": "Token is blacklisted", "code": "token_not_valid"}`
	// verify reports a blacklisted token as a validation error, not a 401.
	blacklistedAtVerify = `{"non_field_errors": ["Token is blacklisted"]}`
)

// dateWithOffset is how DRF renders a datetime in TIME_ZONE America/Chicago.
var dateWithOffset = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?-0[56]:00$`)

func TestHS256(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	svc := djangoauth.Start(t, djangoauth.Options{})
	t.Logf("Start took %v", time.Since(begin).Round(time.Millisecond))
	alice := svc.CreateUser(t, "alice@example.com", "alice-pw", []string{"billing"}, false)
	bob := svc.CreateUser(t, "bob@example.com", "bob-pw", nil, false)
	staff := svc.CreateUser(t, "staff@example.com", "staff-pw", nil, true)

	t.Run("login JSON", func(t *testing.T) {
		r := post(t, svc.URL+"/auth/token/", map[string]string{"email": "alice@example.com", "password": "alice-pw"})
		r.want(t, http.StatusOK)
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type=%q, want application/json", ct)
		}
		if keys := r.keys(t); !slices.Equal(keys, []string{"access", "refresh"}) {
			t.Errorf("keys=%v, want [access refresh]", keys)
		}
	})

	t.Run("login form-encoded", func(t *testing.T) {
		r := postForm(t, svc.URL+"/auth/token/", url.Values{"email": {"alice@example.com"}, "password": {"alice-pw"}})
		r.want(t, http.StatusOK)
		if keys := r.keys(t); !slices.Equal(keys, []string{"access", "refresh"}) {
			t.Errorf("keys=%v, want [access refresh]", keys)
		}
	})

	t.Run("token claims", func(t *testing.T) {
		p := login(t, svc, "alice@example.com", "alice-pw")
		h, c := decode(t, p.access)
		if h["alg"] != "HS256" || h["typ"] != "JWT" || h["kid"] != nil {
			t.Errorf("access header=%v, want alg HS256, typ JWT, no kid", h)
		}
		verifyHS256(t, p.access, svc.SigningKey())
		if c["token_type"] != "access" {
			t.Errorf("token_type=%v, want access", c["token_type"])
		}
		// 5.2.2 sends the id as a JSON number; 5.5.1 and later as a string.
		if id, ok := c["user_id"].(json.Number); !ok || id.String() != fmt.Sprint(alice) {
			t.Errorf("user_id=%#v, want the number %d", c["user_id"], alice)
		}
		if got := seconds(t, c["exp"]) - seconds(t, c["iat"]); got != 300 {
			t.Errorf("access exp-iat=%d, want 300", got)
		}
		if jti, _ := c["jti"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(jti) {
			t.Errorf("jti=%q, want 32 hex digits", jti)
		}
		if c["iss"] != nil || c["aud"] != nil {
			t.Errorf("iss=%v aud=%v, want neither", c["iss"], c["aud"])
		}
		_, rc := decode(t, p.refresh)
		if rc["token_type"] != "refresh" || seconds(t, rc["exp"])-seconds(t, rc["iat"]) != 86400 {
			t.Errorf("refresh claims=%v, want token_type refresh, 1-day lifetime", rc)
		}
	})

	t.Run("own record", func(t *testing.T) {
		p := login(t, svc, "alice@example.com", "alice-pw")
		r := get(t, fmt.Sprintf("%s/auth/users/%d/", svc.URL, alice), p.access)
		r.want(t, http.StatusOK)
		want := []string{"date_joined", "email", "first_name", "id", "is_active", "is_staff",
			"is_superuser", "last_login", "last_name", "services", "username"}
		if keys := r.keys(t); !slices.Equal(keys, want) {
			t.Errorf("keys=%v, want %v", keys, want)
		}
		var u struct {
			ID         int64
			Email      string
			Username   *string
			Services   []string
			DateJoined *string `json:"date_joined"`
			LastLogin  *string `json:"last_login"`
			IsActive   bool    `json:"is_active"`
			IsStaff    bool    `json:"is_staff"`
		}
		r.decode(t, &u)
		if u.ID != alice || u.Email != "alice@example.com" || u.Username != nil ||
			!slices.Equal(u.Services, []string{"billing"}) || !u.IsActive || u.IsStaff {
			t.Errorf("record=%s", r.body)
		}
		// UPDATE_LAST_LOGIN is on, so the login above set last_login.
		for name, d := range map[string]*string{"date_joined": u.DateJoined, "last_login": u.LastLogin} {
			if d == nil || !dateWithOffset.MatchString(*d) {
				t.Errorf("%s=%v, want ISO 8601 with a -06:00/-05:00 offset", name, d)
			}
		}
		me := get(t, svc.URL+"/auth/user/", p.access)
		me.want(t, http.StatusOK)
		if !bytes.Equal(me.body, r.body) {
			t.Errorf("/auth/user/ = %s, want the same as /auth/users/%d/ = %s", me.body, alice, r.body)
		}
	})

	t.Run("other user is 404", func(t *testing.T) {
		p := login(t, svc, "alice@example.com", "alice-pw")
		get(t, fmt.Sprintf("%s/auth/users/%d/", svc.URL, bob), p.access).wantJSON(t, http.StatusNotFound, notFound)
		get(t, svc.URL+"/auth/users/999999/", p.access).wantJSON(t, http.StatusNotFound, notFound)
	})

	t.Run("staff reads others", func(t *testing.T) {
		p := login(t, svc, "staff@example.com", "staff-pw")
		r := get(t, fmt.Sprintf("%s/auth/users/%d/", svc.URL, bob), p.access)
		r.want(t, http.StatusOK)
		var u struct{ ID int64 }
		r.decode(t, &u)
		if u.ID != bob {
			t.Errorf("id=%d, want %d", u.ID, bob)
		}
		me := get(t, svc.URL+"/auth/user/", p.access)
		me.want(t, http.StatusOK)
		me.decode(t, &u)
		if u.ID != staff {
			t.Errorf("/auth/user/ id=%d, want %d", u.ID, staff)
		}
	})

	t.Run("verify accepts a refresh token", func(t *testing.T) {
		// The trap: verify checks no token type, so it cannot tell the
		// gateway that a refresh token is not an access token.
		p := login(t, svc, "alice@example.com", "alice-pw")
		verify(t, svc, p.refresh).wantJSON(t, http.StatusOK, `{}`)
		verify(t, svc, p.access).wantJSON(t, http.StatusOK, `{}`)
		// The protected views do check the type.
		r := get(t, svc.URL+"/auth/user/", p.refresh)
		r.wantJSON(t, http.StatusUnauthorized, `{"detail": "Given token not valid for any token type",
			"code": "token_not_valid", "messages": [{"token_class": "AccessToken",
			"token_type": "access", "message": "Token has wrong type"}]}`)
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="api"` {
			t.Errorf("WWW-Authenticate=%q", got)
		}
	})

	t.Run("refresh rotates and blacklists the old token", func(t *testing.T) {
		p := login(t, svc, "alice@example.com", "alice-pw")
		r := refresh(t, svc, p.refresh)
		r.want(t, http.StatusOK)
		var next struct{ Access, Refresh string }
		r.decode(t, &next)
		if keys := r.keys(t); !slices.Equal(keys, []string{"access", "refresh"}) {
			t.Errorf("keys=%v, want [access refresh]", keys)
		}
		if next.Refresh == p.refresh {
			t.Error("refresh token not rotated")
		}
		if _, c := decode(t, next.Access); c["token_type"] != "access" {
			t.Errorf("new access token_type=%v", c["token_type"])
		}
		refresh(t, svc, p.refresh).wantJSON(t, http.StatusUnauthorized, blacklisted)
		verify(t, svc, p.refresh).wantJSON(t, http.StatusBadRequest, blacklistedAtVerify)
		refresh(t, svc, next.Refresh).want(t, http.StatusOK)
	})

	t.Run("blacklist", func(t *testing.T) {
		p := login(t, svc, "alice@example.com", "alice-pw")
		post(t, svc.URL+"/auth/token/blacklist/", map[string]string{"refresh": p.refresh}).wantJSON(t, http.StatusOK, `{}`)
		refresh(t, svc, p.refresh).wantJSON(t, http.StatusUnauthorized, blacklisted)
		verify(t, svc, p.refresh).wantJSON(t, http.StatusBadRequest, blacklistedAtVerify)
		post(t, svc.URL+"/auth/token/blacklist/", map[string]string{"refresh": p.refresh}).
			wantJSON(t, http.StatusUnauthorized, blacklisted)
		// Blacklisting kills only the refresh token: its access token lives on.
		get(t, svc.URL+"/auth/user/", p.access).want(t, http.StatusOK)
		verify(t, svc, p.access).wantJSON(t, http.StatusOK, `{}`)
	})

	t.Run("bad credentials", func(t *testing.T) {
		post(t, svc.URL+"/auth/token/", map[string]string{"email": "alice@example.com", "password": "wrong"}).
			wantJSON(t, http.StatusUnauthorized, noAccount)
		post(t, svc.URL+"/auth/token/", map[string]string{"email": "nobody@example.com", "password": "x"}).
			wantJSON(t, http.StatusUnauthorized, noAccount)
		post(t, svc.URL+"/auth/token/", map[string]string{"password": "x"}).
			wantJSON(t, http.StatusBadRequest, `{"email": ["This field is required."]}`)
	})

	t.Run("bad tokens", func(t *testing.T) {
		verify(t, svc, "not-a-token").wantJSON(t, http.StatusUnauthorized, invalidToken)
		refresh(t, svc, "not-a-token").wantJSON(t, http.StatusUnauthorized, invalidToken)
		p := login(t, svc, "alice@example.com", "alice-pw")
		forged := p.access[:strings.LastIndexByte(p.access, '.')+1] + "AAAA"
		verify(t, svc, forged).wantJSON(t, http.StatusUnauthorized, invalidToken)
		r := get(t, svc.URL+"/auth/user/", forged)
		r.wantJSON(t, http.StatusUnauthorized, `{"detail": "Given token not valid for any token type",
			"code": "token_not_valid", "messages": [{"token_class": "AccessToken",
			"token_type": "access", "message": "Token is invalid or expired"}]}`)
		get(t, svc.URL+"/auth/user/", "").wantJSON(t, http.StatusUnauthorized,
			`{"detail": "Authentication credentials were not provided."}`)
		// A stale Authorization header does not stop a refresh.
		req := newRequest(t, http.MethodPost, svc.URL+"/auth/token/refresh/", jsonBody(t, map[string]string{"refresh": p.refresh}))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer stale.garbage.token")
		do(t, req).want(t, http.StatusOK)
	})

	t.Run("inactive user", func(t *testing.T) {
		p := login(t, svc, "bob@example.com", "bob-pw")
		svc.SetActive(t, bob, false)
		get(t, svc.URL+"/auth/user/", p.access).wantJSON(t, http.StatusUnauthorized,
			`{"detail": "User is inactive", "code": "user_inactive"}`)
		// verify and refresh never look at the user.
		verify(t, svc, p.access).wantJSON(t, http.StatusOK, `{}`)
		refresh(t, svc, p.refresh).want(t, http.StatusOK)
		post(t, svc.URL+"/auth/token/", map[string]string{"email": "bob@example.com", "password": "bob-pw"}).
			wantJSON(t, http.StatusUnauthorized, noAccount)
		svc.SetActive(t, bob, true)
		login(t, svc, "bob@example.com", "bob-pw")
	})

	t.Run("no JWKS for HS256", func(t *testing.T) {
		get(t, svc.URL+"/.well-known/jwks.json", "").wantJSON(t, http.StatusNotFound, notFound)
	})
}

func TestExpiredAccessToken(t *testing.T) {
	t.Parallel()
	svc := djangoauth.Start(t, djangoauth.Options{AccessTTL: time.Second})
	svc.CreateUser(t, "carol@example.com", "carol-pw", nil, false)
	p := login(t, svc, "carol@example.com", "carol-pw")
	_, c := decode(t, p.access)
	if got := seconds(t, c["exp"]) - seconds(t, c["iat"]); got != 1 {
		t.Fatalf("exp-iat=%d, want 1", got)
	}
	time.Sleep(time.Until(time.Unix(seconds(t, c["exp"])+1, 0)))
	verify(t, svc, p.access).wantJSON(t, http.StatusUnauthorized, invalidToken)
	get(t, svc.URL+"/auth/user/", p.access).want(t, http.StatusUnauthorized)
	refresh(t, svc, p.refresh).want(t, http.StatusOK)
}

func TestRS256(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	svc := djangoauth.Start(t, djangoauth.Options{
		Algorithm:       "RS256",
		SigningKeyPEM:   privatePEM(t, key),
		VerifyingKeyPEM: publicPEM(t, &key.PublicKey),
		Kid:             "rsa-1",
		Issuer:          "https://auth.example.test",
		Audience:        "jwtgate",
	})
	t.Logf("Start took %v", time.Since(begin).Round(time.Millisecond))
	id := svc.CreateUser(t, "dave@example.com", "dave-pw", []string{"billing", "reports"}, false)

	r := get(t, svc.URL+"/.well-known/jwks.json", "")
	r.want(t, http.StatusOK)
	var set struct{ Keys []map[string]string }
	r.decode(t, &set)
	if len(set.Keys) != 1 {
		t.Fatalf("jwks=%s, want one key", r.body)
	}
	k := set.Keys[0]
	want := map[string]string{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}
	if !reflect.DeepEqual(k, want) {
		t.Errorf("jwk=%v, want %v", k, want)
	}

	p := login(t, svc, "dave@example.com", "dave-pw")
	rp := refresh(t, svc, p.refresh)
	rp.want(t, http.StatusOK)
	var rotated struct{ Access, Refresh string }
	rp.decode(t, &rotated)
	for name, tok := range map[string]string{"access": p.access, "refresh": p.refresh,
		"rotated access": rotated.Access, "rotated refresh": rotated.Refresh} {
		h, c := decode(t, tok)
		if h["alg"] != "RS256" || h["kid"] != "rsa-1" {
			t.Errorf("%s header=%v, want alg RS256, kid rsa-1", name, h)
		}
		if c["iss"] != "https://auth.example.test" || c["aud"] != "jwtgate" {
			t.Errorf("%s iss=%v aud=%v", name, c["iss"], c["aud"])
		}
		hash := sha256.Sum256([]byte(signingInput(tok)))
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, hash[:], signature(t, tok)); err != nil {
			t.Errorf("%s signature: %v", name, err)
		}
	}
	verify(t, svc, p.access).wantJSON(t, http.StatusOK, `{}`)
	me := get(t, svc.URL+"/auth/user/", p.access)
	me.want(t, http.StatusOK)
	var u struct {
		ID       int64
		Services []string
	}
	me.decode(t, &u)
	if u.ID != id || !slices.Equal(u.Services, []string{"billing", "reports"}) {
		t.Errorf("record=%s", me.body)
	}
}

func TestES256WithoutKid(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Only the private key: the service derives the public one.
	svc := djangoauth.Start(t, djangoauth.Options{Algorithm: "ES256", SigningKeyPEM: privatePEM(t, key)})
	svc.CreateUser(t, "erin@example.com", "erin-pw", nil, false)

	r := get(t, svc.URL+"/.well-known/jwks.json", "")
	r.want(t, http.StatusOK)
	var set struct{ Keys []map[string]string }
	r.decode(t, &set)
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y, 32 bytes each
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
		"x": b64(pub[1:33]), "y": b64(pub[33:])}
	if len(set.Keys) != 1 || !reflect.DeepEqual(set.Keys[0], want) {
		t.Errorf("jwks=%s, want one key %v", r.body, want)
	}

	p := login(t, svc, "erin@example.com", "erin-pw")
	h, _ := decode(t, p.access)
	if h["alg"] != "ES256" || h["kid"] != nil {
		t.Errorf("header=%v, want alg ES256 and no kid (stock SimpleJWT)", h)
	}
	sig := signature(t, p.access)
	hash := sha256.Sum256([]byte(signingInput(p.access)))
	if len(sig) != 64 || !ecdsa.Verify(&key.PublicKey, hash[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("ES256 signature does not verify with the public key")
	}
	get(t, svc.URL+"/auth/user/", p.access).want(t, http.StatusOK)
}

// pair is a login's tokens.
type pair struct{ access, refresh string }

func login(t *testing.T, svc *djangoauth.Service, email, password string) pair {
	t.Helper()
	r := post(t, svc.URL+"/auth/token/", map[string]string{"email": email, "password": password})
	r.want(t, http.StatusOK)
	var p struct{ Access, Refresh string }
	r.decode(t, &p)
	return pair{p.Access, p.Refresh}
}

func verify(t *testing.T, svc *djangoauth.Service, token string) response {
	t.Helper()
	return post(t, svc.URL+"/auth/token/verify/", map[string]string{"token": token})
}

func refresh(t *testing.T, svc *djangoauth.Service, token string) response {
	t.Helper()
	return post(t, svc.URL+"/auth/token/refresh/", map[string]string{"refresh": token})
}

// response is a read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) want(t *testing.T, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status=%d, want %d; body=%s", r.status, status, r.body)
	}
}

// wantJSON checks the status and that the body is the same JSON value as want.
func (r response) wantJSON(t *testing.T, status int, want string) {
	t.Helper()
	r.want(t, status)
	var got, exp any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body=%s, want %s", r.body, want)
	}
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// keys returns the body object's keys, sorted.
func (r response) keys(t *testing.T) []string {
	t.Helper()
	var m map[string]json.RawMessage
	r.decode(t, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func post(t *testing.T, u string, body any) response {
	t.Helper()
	req := newRequest(t, http.MethodPost, u, jsonBody(t, body))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func postForm(t *testing.T, u string, form url.Values) response {
	t.Helper()
	req := newRequest(t, http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func get(t *testing.T, u, bearer string) response {
	t.Helper()
	req := newRequest(t, http.MethodGet, u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, req)
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func newRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

var client = &http.Client{Timeout: 30 * time.Second}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

// decode returns a JWT's header and claims without checking the signature;
// numbers stay json.Number so tests can tell 7 from "7".
func decode(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	out := [2]map[string]any{}
	for i := range out {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out[i]); err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
	}
	return out[0], out[1]
}

func signingInput(token string) string { return token[:strings.LastIndexByte(token, '.')] }

func signature(t *testing.T, token string) []byte {
	t.Helper()
	sig, err := base64.RawURLEncoding.DecodeString(token[strings.LastIndexByte(token, '.')+1:])
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	return sig
}

func verifyHS256(t *testing.T, token, secret string) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signingInput(token)))
	if !hmac.Equal(mac.Sum(nil), signature(t, token)) {
		t.Error("HS256 signature does not verify with SigningKey()")
	}
}

func seconds(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%#v is not a number", v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not a whole number: %v", n, err)
	}
	return i
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func privatePEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func publicPEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
