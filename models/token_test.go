package models

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func access(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"token_type": "access", "exp": testNow.Add(5 * time.Minute).Unix(), "iat": testNow.Unix(), "jti": "j", "user_id": 42}
	if edit != nil {
		edit(c)
	}
	return c
}

func TestPrecheckToken(t *testing.T) {
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, access(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		token  string
		reason string // "" = accepted
		uid    string
	}{
		{"numeric id", sign(t, access(nil)), "", "42"},
		{"string id", sign(t, access(func(c jwt.MapClaims) { c["user_id"] = "7" })), "", "7"},
		{"uuid id", sign(t, access(func(c jwt.MapClaims) { c["user_id"] = "0b0c9a1e-1" })), "", "0b0c9a1e-1"},
		{"no token_type claim", sign(t, access(func(c jwt.MapClaims) { delete(c, "token_type") })), "", "42"},
		{"big numeric id keeps precision", sign(t, access(func(c jwt.MapClaims) { c["user_id"] = int64(9007199254740993) })), "", "9007199254740993"},
		{"refresh token", sign(t, access(func(c jwt.MapClaims) { c["token_type"] = "refresh" })), ReasonWrongTokenType, ""},
		{"expired", sign(t, access(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Second).Unix() })), ReasonExpired, ""},
		{"exp now", sign(t, access(func(c jwt.MapClaims) { c["exp"] = testNow.Unix() })), ReasonExpired, ""},
		{"no exp", sign(t, access(func(c jwt.MapClaims) { delete(c, "exp") })), ReasonNoExpiry, ""},
		{"exp string", sign(t, access(func(c jwt.MapClaims) { c["exp"] = "soon" })), ReasonMalformed, ""},
		{"nbf future", sign(t, access(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(time.Minute).Unix() })), ReasonNotYetValid, ""},
		{"no user id", sign(t, access(func(c jwt.MapClaims) { delete(c, "user_id") })), ReasonNoUserID, ""},
		{"empty user id", sign(t, access(func(c jwt.MapClaims) { c["user_id"] = "" })), ReasonNoUserID, ""},
		{"fractional user id", sign(t, access(func(c jwt.MapClaims) { c["user_id"] = 1.5 })), ReasonNoUserID, ""},
		{"bool user id", sign(t, access(func(c jwt.MapClaims) { c["user_id"] = true })), ReasonNoUserID, ""},
		{"alg none", none, ReasonAlgNone, ""},
		{"alg NONE with signature (unknown alg)", seg(`{"alg":"NONE"}`) + "." + seg(`{"exp":9999999999,"user_id":1}`) + ".c2ln", ReasonMalformed, ""},
		{"no alg", seg(`{"typ":"JWT"}`) + "." + seg(`{"exp":9999999999,"user_id":1}`) + ".c2ln", ReasonMalformed, ""},
		{"header not json", seg(`nope`) + "." + seg(`{}`) + ".c2ln", ReasonMalformed, ""},
		{"claims not json", seg(`{"alg":"HS256"}`) + "." + seg(`[1]`) + ".c2ln", ReasonMalformed, ""},
		{"padding in segment", seg(`{"alg":"HS256"}`) + "=." + seg(`{}`) + ".c2ln", ReasonMalformed, ""},
		{"signature not base64url", sign(t, access(nil)) + "*", ReasonMalformed, ""},
		{"two segments", "a.b", ReasonMalformed, ""},
		{"four segments", "a.b.c.d", ReasonMalformed, ""},
		{"empty", "", ReasonMalformed, ""},
		{"too long", strings.Repeat("a", MaxTokenBytes+1), ReasonTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := PrecheckToken(tt.token, "user_id", 0, testNow)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tok.UserID != tt.uid {
					t.Fatalf("user id %q, want %q", tok.UserID, tt.uid)
				}
				return
			}
			if !errors.Is(err, ErrTokenInvalid) || TokenReason(err) != tt.reason {
				t.Fatalf("err %v (reason %q), want reason %q", err, TokenReason(err), tt.reason)
			}
		})
	}
}

func TestPrecheckLeeway(t *testing.T) {
	tok := sign(t, access(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-5 * time.Second).Unix() }))
	if _, err := PrecheckToken(tok, "user_id", 10*time.Second, testNow); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	if _, err := PrecheckToken(tok, "user_id", time.Second, testNow); TokenReason(err) != ReasonExpired {
		t.Fatalf("past leeway: %v", err)
	}
}

func TestPrecheckCustomClaimAndNumbers(t *testing.T) {
	tok := sign(t, access(func(c jwt.MapClaims) { c["sub"] = "u-1"; c["level"] = 3 }))
	got, err := PrecheckToken(tok, "sub", 0, testNow)
	if err != nil || got.UserID != "u-1" {
		t.Fatalf("%+v %v", got, err)
	}
	if v, ok := got.Claims["level"].(int64); !ok || v != 3 {
		t.Fatalf("numbers not plain for rules: %T %v", got.Claims["level"], got.Claims["level"])
	}
}

func FuzzPrecheckToken(f *testing.F) {
	for _, s := range []string{"a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "...", "", "eyJhbGciOiJub25lIn0.eyJleHAiOjk5OTk5OTk5OTl9."} {
		f.Add(s)
	}
	f.Add(sign(f, access(nil)))
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := PrecheckToken(raw, "user_id", 0, testNow)
		if err != nil {
			if !errors.Is(err, ErrTokenInvalid) || TokenReason(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if tok.UserID == "" || !tok.Expires.After(testNow) || strings.EqualFold(tok.Alg, "none") {
			t.Fatalf("accepted a token that should fail: %+v", tok)
		}
	})
}
