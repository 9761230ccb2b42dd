package authn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// signSegments signs header.claims as they are (any spelling) with m.
func signSegments(t testing.TB, m jwt.SigningMethod, key any, header, claims string) string {
	t.Helper()
	sig, err := m.Sign(header+"."+claims, key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return header + "." + claims + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// segment is v as JSON in base64url, or s itself when v is a string.
func segment(v any) string {
	if s, ok := v.(string); ok {
		return base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// editSegment returns raw with segment i replaced by edit(segment i).
func editSegment(raw string, i int, edit func(string) string) string {
	parts := strings.Split(raw, ".")
	parts[i] = edit(parts[i])
	return strings.Join(parts, ".")
}

// nonCanonical sets the unused low bits of seg's last character: the same
// bytes to a lenient decoder, another text. seg must not be a multiple of
// four characters long.
func nonCanonical(t testing.TB, seg string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 || len(seg)%4 == 1 {
		t.Fatalf("segment of %d characters has no padding bits", len(seg))
	}
	v := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[v|1])
}

// padded adds the '=' padding base64url without padding leaves out.
func padded(t testing.TB, seg string) string {
	t.Helper()
	if len(seg)%4 == 0 {
		t.Fatalf("segment of %d characters takes no padding", len(seg))
	}
	return seg + strings.Repeat("=", 4-len(seg)%4)
}

// jwtErrors are the errors whose presence in a chain is its class: what
// classify and its callers can tell apart.
var jwtErrors = []error{
	jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid,
	jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidAudience, jwt.ErrTokenExpired,
	jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidSubject,
	jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidId, jwt.ErrTokenInvalidClaims,
	jwt.ErrInvalidKeyType, jwt.ErrHashUnavailable, jwt.ErrSignatureInvalid, jwt.ErrECDSAVerification,
	jwt.ErrEd25519Verification, rsa.ErrVerification, models.ErrTokenInvalid, models.ErrAuthUnavailable,
}

// errClass lists which of jwtErrors err matches, and the types of the
// decoding errors it wraps.
func errClass(err error) []string {
	var class []string
	for _, e := range jwtErrors {
		if errors.Is(err, e) {
			class = append(class, e.Error())
		}
	}
	var b64 base64.CorruptInputError
	if errors.As(err, &b64) {
		class = append(class, "base64.CorruptInputError")
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		class = append(class, "json.SyntaxError")
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		class = append(class, "json.UnmarshalTypeError")
	}
	var te *models.TokenError
	if errors.As(err, &te) {
		class = append(class, "TokenError "+te.Reason)
	}
	return class
}

// staticLocal is a Local with the static test keys: RS256 and ES256 PEM
// files and the HS256 secret.
func staticLocal(t testing.TB) *Local {
	t.Helper()
	return newTestLocal(t, LocalConfig{
		Issuers: staticIssuer("testdata/rsa_public.pem", "testdata/ec_public.pem", "env:JWT_SECRET"),
	}, env(map[string]string{"JWT_SECRET": testSecret}))
}

// parsed is one way's outcome: everything verifyDecoded and classify read.
type parsed struct {
	tok     *jwt.Token
	claims  jwt.RegisteredClaims
	err     error
	keyFors int
}

// TestLocalParseMatchesParseWithClaims: keySet.parse (golang-jwt's
// decoding, then check with the fast RSA verify) and the parser's own
// ParseWithClaims give, for every token, the same result: accepted or
// refused with the same error class and refusal reason, the same decoded
// header, method, signature and claims, and the keyfunc asked as often.
func TestLocalParseMatchesParseWithClaims(t *testing.T) {
	k := keys(t)
	static := staticLocal(t)
	srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey))
	fromJWKS := newTestLocal(t, LocalConfig{Issuers: jwksIssuer(srv.URL)}, nil)

	otherRSA := rsaKeysBySize(t)[2048]
	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs := func(mod map[string]any) string { return sign(t, jwt.SigningMethodRS256, k.rsa, claims(mod), "") }
	valid := rs(nil)
	// A header and claims whose base64url lengths leave padding bits.
	hdr := segment(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k"})
	cl := segment(claims(map[string]any{"jti": "0123456789abcde"}))
	spelled := func(h, c string) string { return signSegments(t, jwt.SigningMethodRS256, k.rsa, h, c) }
	header, payload := segment(map[string]any{"alg": "RS256", "typ": "JWT"}), segment(claims(nil))

	tests := []struct {
		name  string
		local *Local
		raw   string
		want  string // the refusal reason; "" accepted
	}{
		{"RS256", static, valid, ""},
		{"ES256", static, sign(t, jwt.SigningMethodES256, k.ec, claims(nil), ""), ""},
		{"HS256", static, sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil), ""), ""},
		{"RS256 wrong key", static, sign(t, jwt.SigningMethodRS256, otherRSA, claims(nil), ""), models.ReasonBadSignature},
		{"ES256 wrong key", static, sign(t, jwt.SigningMethodES256, otherEC, claims(nil), ""), models.ReasonBadSignature},
		{"HS256 wrong secret", static, sign(t, jwt.SigningMethodHS256, []byte(testSecret+"x"), claims(nil), ""), models.ReasonBadSignature},
		{"HS256 with the RSA public key PEM", static, sign(t, jwt.SigningMethodHS256, k.rsaPublicPEM, claims(nil), ""), models.ReasonBadSignature},
		{"RS256 tampered claims", static, editSegment(valid, 1, func(string) string { return segment(claims(map[string]any{"user_id": "1"})) }), models.ReasonBadSignature},
		{"RS256 signature one byte short", static, editSegment(valid, 2, func(s string) string {
			b, _ := base64.RawURLEncoding.DecodeString(s)
			return base64.RawURLEncoding.EncodeToString(b[1:])
		}), models.ReasonBadSignature},
		{"RS256 empty signature", static, editSegment(valid, 2, func(string) string { return "" }), models.ReasonBadSignature},
		{"alg not allowed (RS384)", static, sign(t, jwt.SigningMethodRS384, k.rsa, claims(nil), ""), models.ReasonAlgNotAllowed},
		{"alg not allowed (PS256)", static, sign(t, jwt.SigningMethodPS256, k.rsa, claims(nil), ""), models.ReasonAlgNotAllowed},
		{"alg none", static, unsigned(map[string]any{"alg": "none", "typ": "JWT"}, claims(nil), ""), models.ReasonAlgNotAllowed},
		{"alg none with a signature", static, unsigned(map[string]any{"alg": "none"}, claims(nil), "c2ln"), models.ReasonAlgNotAllowed},
		{"alg unknown", static, unsigned(map[string]any{"alg": "XS256"}, claims(nil), "c2ln"), models.ReasonAlgNotAllowed},
		{"alg missing", static, unsigned(map[string]any{"typ": "JWT"}, claims(nil), "c2ln"), models.ReasonAlgNotAllowed},
		{"alg a number", static, unsigned(map[string]any{"alg": 256}, claims(nil), "c2ln"), models.ReasonAlgNotAllowed},
		{"alg not allowed, signature not base64", static, editSegment(sign(t, jwt.SigningMethodRS384, k.rsa, claims(nil), ""), 2, func(s string) string { return "!" + s[1:] }), models.ReasonMalformed},
		{"header not base64", static, editSegment(valid, 0, func(s string) string { return "!" + s[1:] }), models.ReasonMalformed},
		{"claims not base64", static, editSegment(valid, 1, func(s string) string { return s[:4] + "*" + s[5:] }), models.ReasonMalformed},
		{"signature not base64", static, editSegment(valid, 2, func(s string) string { return s[:10] + "+" + s[11:] }), models.ReasonMalformed},
		{"signature in std base64 alphabet", static, editSegment(valid, 2, func(s string) string { return "/" + s[1:] }), models.ReasonMalformed},
		{"signature of an impossible length", static, editSegment(valid, 2, func(s string) string { return s[:len(s)-1] }), models.ReasonMalformed},
		{"header non-canonical padding bits", static, spelled(nonCanonical(t, hdr), cl), ""},
		{"claims non-canonical padding bits", static, spelled(hdr, nonCanonical(t, cl)), ""},
		{"signature non-canonical padding bits", static, editSegment(valid, 2, func(s string) string { return nonCanonical(t, s) }), ""},
		{"header '=' padded", static, spelled(padded(t, hdr), cl), models.ReasonMalformed},
		{"claims '=' padded", static, spelled(hdr, padded(t, cl)), models.ReasonMalformed},
		{"signature '=' padded", static, editSegment(valid, 2, func(s string) string { return padded(t, s) }), models.ReasonMalformed},
		{"extra segment", static, valid + ".e30", models.ReasonMalformed},
		{"extra empty segment", static, valid + ".", models.ReasonMalformed},
		{"two segments", static, header + "." + payload, models.ReasonMalformed},
		{"empty", static, "", models.ReasonMalformed},
		{"header not JSON", static, spelled(segment("not json"), payload), models.ReasonMalformed},
		{"header a JSON list", static, spelled(segment(`["RS256"]`), payload), models.ReasonMalformed},
		{"claims not JSON", static, spelled(header, segment("{not json")), models.ReasonMalformed},
		{"claims a JSON list", static, spelled(header, segment(`[1]`)), models.ReasonMalformed},
		{"claims with trailing data", static, spelled(header, segment(`{"exp":1} {}`)), models.ReasonMalformed},
		{"exp a string", static, rs(map[string]any{"exp": "tomorrow"}), models.ReasonMalformed},
		{"aud a number", static, rs(map[string]any{"aud": 7}), models.ReasonMalformed},
		{"float exp", static, rs(map[string]any{"exp": float64(testNow.Add(time.Hour).Unix()) + 0.5}), ""},
		{"EXP in capitals beside exp", static, rs(map[string]any{"EXP": testNow.Add(-time.Hour).Unix()}), ""},
		{"exp past", static, rs(map[string]any{"exp": testNow.Add(-time.Second).Unix()}), models.ReasonExpired},
		{"nbf future", static, rs(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), models.ReasonNotYetValid},
		{"no exp", static, rs(map[string]any{"exp": nil}), models.ReasonNoExpiry},
		{"iss wrong", static, rs(map[string]any{"iss": "https://evil.test"}), models.ReasonWrongIssuer},
		{"no iss", static, rs(map[string]any{"iss": nil}), models.ReasonWrongIssuer},
		{"aud wrong", static, rs(map[string]any{"aud": "billing"}), models.ReasonWrongAudience},
		{"aud list without ours", static, rs(map[string]any{"aud": []string{"x", "y"}}), models.ReasonWrongAudience},
		{"no aud", static, rs(map[string]any{"aud": nil}), models.ReasonWrongAudience},
		{"expired and wrong key", static, sign(t, jwt.SigningMethodRS256, otherRSA, claims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), ""), models.ReasonBadSignature},
		{"alg not allowed (ES384), bogus signature", static, unsigned(map[string]any{"alg": "ES384"}, claims(nil), "c2ln"), models.ReasonAlgNotAllowed},
		{"JWKS kid k1", fromJWKS, sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "k1"), ""},
		{"JWKS no kid", fromJWKS, valid, ""},
		{"JWKS no kid, wrong key", fromJWKS, sign(t, jwt.SigningMethodRS256, otherRSA, claims(nil), ""), models.ReasonBadSignature},
		{"JWKS kid unknown", fromJWKS, sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "nope"), models.ReasonUnknownKey},
		{"JWKS kid a number", fromJWKS, signSegments(t, jwt.SigningMethodRS256, k.rsa, segment(map[string]any{"alg": "RS256", "kid": 1}), payload), models.ReasonMalformed},
		{"JWKS ES256 under an RSA kid", fromJWKS, sign(t, jwt.SigningMethodES256, k.ec, claims(nil), "k1"), models.ReasonAlgKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameParse(t, tt.local.single, tt.raw); got != tt.want {
				t.Fatalf("refusal %q, want %q", got, tt.want)
			}
		})
	}
}

// sameParse fails t unless ks.parse and ks.parser.ParseWithClaims agree on
// raw: accepted or refused with the same error class and refusal reason,
// the same decoded header, method, signature and claims, the keyfunc asked
// as often. It returns the refusal reason ("" accepted).
func sameParse(t *testing.T, ks *keySet, raw string) string {
	t.Helper()
	run := func(parse func(raw string, c *jwt.RegisteredClaims, keyFor jwt.Keyfunc) (*jwt.Token, error)) parsed {
		var p parsed
		keyFor := func(tok *jwt.Token) (any, error) {
			p.keyFors++
			return ks.key(t.Context(), tok)
		}
		p.tok, p.err = parse(raw, &p.claims, keyFor)
		return p
	}
	fast := run(ks.parse)
	std := run(func(raw string, c *jwt.RegisteredClaims, keyFor jwt.Keyfunc) (*jwt.Token, error) {
		return ks.parser.ParseWithClaims(raw, c, keyFor)
	})
	if (fast.err == nil) != (std.err == nil) {
		t.Fatalf("parse: %v; ParseWithClaims: %v", fast.err, std.err)
	}
	if fc, sc := errClass(fast.err), errClass(std.err); !reflect.DeepEqual(fc, sc) {
		t.Fatalf("error class %q (%v); ParseWithClaims %q (%v)", fc, fast.err, sc, std.err)
	}
	fr, sr := "", ""
	if fast.err != nil {
		fr = models.TokenReason(classify(fast.tok, &fast.claims, fast.err, ks.algs))
		sr = models.TokenReason(classify(std.tok, &std.claims, std.err, ks.algs))
	}
	if fr != sr {
		t.Fatalf("refusal %q; ParseWithClaims %q", fr, sr)
	}
	if fast.keyFors != std.keyFors {
		t.Fatalf("keyfunc asked %d times; by ParseWithClaims %d", fast.keyFors, std.keyFors)
	}
	if !reflect.DeepEqual(fast.claims, std.claims) {
		t.Fatalf("claims %+v; ParseWithClaims %+v", fast.claims, std.claims)
	}
	if (fast.tok == nil) != (std.tok == nil) {
		t.Fatalf("token %v; ParseWithClaims %v", fast.tok, std.tok)
	}
	if fast.tok != nil && (!reflect.DeepEqual(fast.tok.Header, std.tok.Header) || fast.tok.Method != std.tok.Method ||
		!bytes.Equal(fast.tok.Signature, std.tok.Signature) || (fast.tok.Signature == nil) != (std.tok.Signature == nil)) {
		t.Fatalf("token %+v; ParseWithClaims %+v", fast.tok, std.tok)
	}
	return fr
}

// FuzzLocalParseMatchesParseWithClaims: sameParse on arbitrary text, with
// the static RS256, ES256 and HS256 keys. Its seeds (accepted and refused
// tokens) run once in plain go test.
func FuzzLocalParseMatchesParseWithClaims(f *testing.F) {
	k := keys(f)
	l := staticLocal(f)
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, claims(nil), ""))
	f.Add(sign(f, jwt.SigningMethodES256, k.ec, claims(nil), "k"))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"exp": nil, "nbf": 1.5}), ""))
	f.Add(unsigned(map[string]any{"alg": "none"}, claims(nil), ""))
	f.Fuzz(func(t *testing.T, raw string) {
		sameParse(t, l.single, raw)
	})
}
