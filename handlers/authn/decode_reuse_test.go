package authn

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// TestLocalReusesDecodedToken: VerifyToken with the pre-checks' decoded
// token (header, signature and claims reused) refuses and accepts exactly
// as golang-jwt's own decoding of the same text (Verify), reason for
// reason. Claims golang-jwt's decoding reads in its own way
// (case-insensitive names, float times, odd types) are decoded by it.
func TestLocalReusesDecodedToken(t *testing.T) {
	k := keys(t)
	l := newTestLocal(t, LocalConfig{
		Issuers:    staticIssuer("testdata/rsa_public.pem", "testdata/ec_public.pem", "env:JWT_SECRET"),
		Algorithms: []string{"RS256", "ES256", "HS256"}, Leeway: 10 * time.Second,
	}, env(map[string]string{"JWT_SECRET": testSecret}))
	hs := func(mod map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(mod), "")
	}
	exp := testNow.Add(time.Hour).Unix()
	tests := []struct {
		name, raw, want string // want: the refusal reason, "" accepted
		reused          bool   // the decoded claims are used, not decoded again
	}{
		{"HS256", hs(nil), "", true},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), ""), "", true},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, claims(nil), ""), "", true},
		{"PS256 not allowed", sign(t, jwt.SigningMethodPS256, k.rsa, claims(nil), ""), models.ReasonAlgNotAllowed, true},
		{"HS384 not allowed", sign(t, jwt.SigningMethodHS384, []byte(testSecret), claims(nil), ""), models.ReasonAlgNotAllowed, true},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("other"), claims(nil), ""), models.ReasonBadSignature, true},
		{"wrong issuer", hs(map[string]any{"iss": "https://evil"}), models.ReasonWrongIssuer, true},
		{"no issuer", hs(map[string]any{"iss": nil}), models.ReasonWrongIssuer, true},
		{"issuer not a string", hs(map[string]any{"iss": 7}), models.ReasonMalformed, false},
		{"wrong audience", hs(map[string]any{"aud": "other"}), models.ReasonWrongAudience, true},
		{"audience list", hs(map[string]any{"aud": []string{"x", testAudience}}), "", true},
		{"audience list without ours", hs(map[string]any{"aud": []string{"x", "y"}}), models.ReasonWrongAudience, true},
		{"audience list with a number", hs(map[string]any{"aud": []any{testAudience, 1}}), models.ReasonMalformed, false},
		{"no audience", hs(map[string]any{"aud": nil}), models.ReasonWrongAudience, true},
		{"expired within leeway", hs(map[string]any{"exp": testNow.Add(-5 * time.Second).Unix()}), "", true},
		{"float exp", hs(map[string]any{"exp": float64(exp) + 0.5}), "", false},
		{"nbf ahead within leeway", hs(map[string]any{"nbf": testNow.Add(5 * time.Second).Unix()}), "", true},
		{"subject not a string", hs(map[string]any{"sub": 5}), models.ReasonMalformed, false},
		{"jti a number", hs(map[string]any{"jti": 5}), models.ReasonMalformed, false},
		{"ISS spelled in capitals", hs(map[string]any{"iss": nil, "ISS": testIssuer}), "", false},
		{"Aud beside aud", hs(map[string]any{"Aud": "other"}), "", false},
		{"iſs (long s) as iss", hs(map[string]any{"iss": nil, "iſs": testIssuer}), "", false},
		{"EXP beside exp", hs(map[string]any{"EXP": testNow.Add(-time.Hour).Unix()}), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pre, err := models.PrecheckToken(tt.raw, "user_id", 10*time.Second, testNow)
			if err != nil {
				t.Fatalf("pre-checks refused the token: %v", err)
			}
			var c jwt.RegisteredClaims
			if _, ok := decodedToken(tt.raw, &pre, &c); ok != tt.reused {
				t.Fatalf("decoded claims reused: %v, want %v", ok, tt.reused)
			}
			slow := reason(t, l.Verify(t.Context(), tt.raw))
			fast := reason(t, l.VerifyToken(t.Context(), tt.raw, pre))
			if fast != slow {
				t.Fatalf("decoded token: %q, golang-jwt's decoding: %q", fast, slow)
			}
			if fast != tt.want {
				t.Fatalf("refusal %q, want %q", fast, tt.want)
			}
		})
	}
}

// TestLocalDecodedTokenBoundToItsText: a pre-checked token is reused only
// with the very text it was decoded from. Another token's decoded header,
// signature and claims never stand in for the token being checked: a forged
// token presented with a genuine token's decoding is still refused.
func TestLocalDecodedTokenBoundToItsText(t *testing.T) {
	l := newTestLocal(t, LocalConfig{Issuers: staticIssuer("env:JWT_SECRET")}, env(map[string]string{"JWT_SECRET": testSecret}))
	genuine := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil), "")
	forged := sign(t, jwt.SigningMethodHS256, []byte("not the secret"), claims(map[string]any{"user_id": "1"}), "")
	pre, err := models.PrecheckToken(genuine, "user_id", 0, testNow)
	if err != nil {
		t.Fatal(err)
	}
	copied := string([]byte(genuine)) // equal text, another string
	tests := []struct {
		name, raw, want string
		reused          bool
	}{
		{"its own text", genuine, "", true},
		{"an equal copy of its text", copied, "", false},
		{"another token", forged, models.ReasonBadSignature, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c jwt.RegisteredClaims
			if _, ok := decodedToken(tt.raw, &pre, &c); ok != tt.reused {
				t.Fatalf("decoded token reused: %v, want %v", ok, tt.reused)
			}
			if got := reason(t, l.VerifyToken(t.Context(), tt.raw, pre)); got != tt.want {
				t.Fatalf("refusal %q, want %q", got, tt.want)
			}
		})
	}
}

// decodedToken is decodeInto with its own storage: pre as golang-jwt's
// parser would have decoded it, or false when golang-jwt must decode raw.
func decodedToken(raw string, pre *models.Token, claims *jwt.RegisteredClaims) (*jwt.Token, bool) {
	dc := new(decodedCheck)
	if !decodeInto(raw, pre, claims, &dc.dates, &dc.aud, &dc.tok) {
		return nil, false
	}
	return &dc.tok, true
}
