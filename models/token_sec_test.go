package models

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokensSeg encodes one JSON segment as a canonical base64url segment.
func tokensSeg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// tokensRaw builds header.claims.sig from JSON texts (the signature is not
// checked by the pre-checks, only its encoding).
func tokensRaw(header, claims string) string {
	return tokensSeg(header) + "." + tokensSeg(claims) + "." + tokensSeg("signature-bytes!")
}

const tokensClaims = `{"token_type":"access","exp":1795435500,"iat":1795435200,"jti":"j","user_id":42`

// tokensAltSpellings returns every other spelling of seg's last character
// that a lenient base64url decoder reads as the same bytes.
func tokensAltSpellings(t *testing.T, seg string) []string {
	t.Helper()
	want, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var out []string
	for _, c := range alphabet {
		alt := seg[:len(seg)-1] + string(c)
		if alt == seg {
			continue
		}
		if got, err := base64.RawURLEncoding.DecodeString(alt); err == nil && string(got) == string(want) {
			out = append(out, alt)
		}
	}
	return out
}

// TestTokensCanonicalEncoding: a token has exactly one accepted spelling.
func TestTokensCanonicalEncoding(t *testing.T) {
	good := sign(t, access(nil)) // HS256: a 32-byte signature, 43 characters, 2 unused bits
	if _, err := PrecheckToken(good, "user_id", 0, testNow); err != nil {
		t.Fatalf("canonical token refused: %v", err)
	}
	parts := strings.Split(good, ".")
	var variants []struct{ name, raw string }
	add := func(name, raw string) { variants = append(variants, struct{ name, raw string }{name, raw}) }
	for i := range parts {
		alts := tokensAltSpellings(t, parts[i])
		if i == 2 && len(alts) != 3 {
			t.Fatalf("want 3 alternative signature spellings, got %d", len(alts))
		}
		for _, alt := range alts {
			p := append([]string(nil), parts...)
			p[i] = alt
			add("unused bits segment "+string(rune('1'+i))+" "+alt[len(alt)-1:], strings.Join(p, "."))
		}
		for _, edit := range []struct{ name, from, to string }{
			{"padding", "", "="}, {"double padding", "", "=="}, {"newline", "", "\n"}, {"cr", "", "\r"},
			{"space", "", " "}, {"tab", "", "\t"}, {"leading newline", "^", "\n"},
		} {
			p := append([]string(nil), parts...)
			if edit.from == "^" {
				p[i] = edit.to + p[i]
			} else {
				p[i] = p[i][:len(p[i])/2] + edit.to + p[i][len(p[i])/2:]
				if edit.name == "padding" || edit.name == "double padding" {
					p[i] = parts[i] + edit.to
				}
			}
			add(edit.name+" in segment "+string(rune('1'+i)), strings.Join(p, "."))
		}
		if strings.ContainsAny(parts[i], "-_") {
			p := append([]string(nil), parts...)
			p[i] = strings.NewReplacer("-", "+", "_", "/").Replace(p[i])
			add("standard alphabet in segment "+string(rune('1'+i)), strings.Join(p, "."))
		}
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			if _, err := PrecheckToken(v.raw, "user_id", 0, testNow); TokenReason(err) != ReasonMalformed {
				t.Fatalf("got %v, want malformed", err)
			}
		})
	}
}

// TestTokensShape: header and claims are objects of bounded depth, checked
// on both sides of each bound.
func TestTokensShape(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	hs := `{"alg":"HS256","typ":"JWT"`
	tests := []struct {
		name, header, claims string
		reason               string // "" = accepted
	}{
		{"plain", hs + `}`, tokensClaims + `}`, ""},
		{"claim list (depth 2)", hs + `}`, tokensClaims + `,"groups":["a","b"]}`, ""},
		{"keycloak realm_access (depth 3)", hs + `}`, tokensClaims + `,"realm_access":{"roles":["a"]}}`, ""},
		{"keycloak resource_access (depth 4)", hs + `}`, tokensClaims + `,"realm_access":{"roles":["a"]},"resource_access":{"api":{"roles":["x"]}}}`, ""},
		{"list of lists of lists (depth 4)", hs + `}`, tokensClaims + `,"x":[[[1]]]}`, ""},
		{"depth 5 array", hs + `}`, tokensClaims + `,"x":[[[[1]]]]}`, ReasonMalformed},
		{"depth 5 object", hs + `}`, tokensClaims + `,"x":{"y":{"z":{"w":{}}}}}`, ReasonMalformed},
		{"depth 5 mixed", hs + `}`, tokensClaims + `,"resource_access":{"api":{"roles":[["x"]]}}}`, ReasonMalformed},
		{"1500 deep claim array", hs + `}`, tokensClaims + `,"x":` + deep(1500) + `}`, ReasonMalformed},
		{"500 deep claim object", hs + `}`, tokensClaims + `,"x":` + deepObj(500) + `}`, ReasonMalformed},
		{"unterminated 2000 deep", hs + `}`, tokensClaims + `,"x":` + strings.Repeat("[", 2000), ReasonMalformed},
		{"claims an array", hs + `}`, `[` + tokensClaims + `}]`, ReasonMalformed},
		{"claims a string", hs + `}`, `"x"`, ReasonMalformed},
		{"duplicate exp", hs + `}`, tokensClaims + `,"exp":9999999999}`, ReasonMalformed},
		{"duplicate user id", hs + `}`, tokensClaims + `,"user_id":1}`, ReasonMalformed},
		{"nested duplicate names allowed", hs + `}`, tokensClaims + `,"x":{"a":1,"a":2}}`, ""},
		{"trailing data", hs + `}`, tokensClaims + `}{}`, ReasonMalformed},
		{"trailing garbage", hs + `}`, tokensClaims + `} x`, ReasonMalformed},
		{"header 1500 deep array", hs + `,"x":` + deep(1500) + `}`, tokensClaims + `}`, ReasonMalformed},
		{"header 1500 deep in kid", `{"alg":"HS256","kid":` + deep(1500) + `}`, tokensClaims + `}`, ReasonMalformed},
		{"header array value", hs + `,"x5c":["a"]}`, tokensClaims + `}`, ReasonMalformed},
		{"header object value", hs + `,"jwk":{"kty":"RSA"}}`, tokensClaims + `}`, ReasonMalformed},
		{"header nested 2", hs + `,"x":[[]]}`, tokensClaims + `}`, ReasonMalformed},
		{"duplicate alg", `{"alg":"none","alg":"HS256"}`, tokensClaims + `}`, ReasonMalformed},
		{"header an array", `[` + hs + `}]`, tokensClaims + `}`, ReasonMalformed},
		{"crit names an extension", hs + `,"crit":["exp"],"exp":1}`, tokensClaims + `}`, ReasonUnsupportedCrit},
		{"crit names b64", hs + `,"crit":["b64"],"b64":false}`, tokensClaims + `}`, ReasonUnsupportedCrit},
		{"crit empty", hs + `,"crit":[]}`, tokensClaims + `}`, ReasonMalformed},
		{"crit a string", hs + `,"crit":"exp"}`, tokensClaims + `}`, ReasonMalformed},
		{"crit numbers", hs + `,"crit":[1]}`, tokensClaims + `}`, ReasonMalformed},
		{"crit null", hs + `,"crit":null}`, tokensClaims + `}`, ReasonMalformed},
		{"crit object", hs + `,"crit":{"a":1}}`, tokensClaims + `}`, ReasonMalformed},
		{"crit nested", hs + `,"crit":[["exp"]]}`, tokensClaims + `}`, ReasonMalformed},
	}
	now := time.Unix(1795435200, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PrecheckToken(tokensRaw(tt.header, tt.claims), "user_id", 0, now)
			if tt.reason == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.reason != "" && TokenReason(err) != tt.reason {
				t.Fatalf("got %v, want %s", err, tt.reason)
			}
		})
	}
}

// TestTokensIssuedAt: iat may be ahead of the gateway's clock by
// max(leeway, 5s), no more.
func TestTokensIssuedAt(t *testing.T) {
	tests := []struct {
		name   string
		iat    any
		leeway time.Duration
		reason string
	}{
		{"now", testNow.Unix(), 0, ""},
		{"past", testNow.Add(-time.Hour).Unix(), 0, ""},
		{"half a second ahead, no leeway", float64(testNow.UnixMilli()+500) / 1000, 0, ""},
		{"five seconds ahead, no leeway", testNow.Add(5 * time.Second).Unix(), 0, ""},
		{"six seconds ahead, no leeway", testNow.Add(6 * time.Second).Unix(), 0, ReasonNotYetValid},
		{"six seconds ahead, 2s leeway", testNow.Add(6 * time.Second).Unix(), 2 * time.Second, ReasonNotYetValid},
		{"29s ahead, 30s leeway", testNow.Add(29 * time.Second).Unix(), 30 * time.Second, ""},
		{"31s ahead, 30s leeway", testNow.Add(31 * time.Second).Unix(), 30 * time.Second, ReasonNotYetValid},
		{"a year ahead", testNow.AddDate(1, 0, 0).Unix(), 30 * time.Second, ReasonNotYetValid},
		{"iat a string", "now", 0, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := sign(t, access(func(c jwt.MapClaims) { c["iat"] = tt.iat }))
			_, err := PrecheckToken(raw, "user_id", tt.leeway, testNow)
			if tt.reason == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.reason != "" && TokenReason(err) != tt.reason {
				t.Fatalf("got %v, want %s", err, tt.reason)
			}
		})
	}
}

// TestTokensRevocationKey: one key per token, whatever its spelling.
func TestTokensRevocationKey(t *testing.T) {
	a := RevocationKey(map[string]any{"jti": "abc", "iss": "i"}, "text-1")
	if a != RevocationKey(map[string]any{"jti": "abc", "iss": "i"}, "text-2") {
		t.Fatal("two spellings of a token with a jti have two keys")
	}
	if a == RevocationKey(map[string]any{"jti": "abc", "iss": "other"}, "text-1") {
		t.Fatal("one jti of two issuers has one key")
	}
	if a == RevocationKey(map[string]any{"jti": "abc"}, "text-1") {
		t.Fatal("no iss and iss share a key")
	}
	if RevocationKey(map[string]any{}, "t1") == RevocationKey(map[string]any{}, "t2") {
		t.Fatal("tokens without jti share a key")
	}
	if RevocationKey(map[string]any{"jti": ""}, "t1") == RevocationKey(map[string]any{"jti": ""}, "t2") {
		t.Fatal("an empty jti is used as a key")
	}
	tok, err := PrecheckToken(sign(t, access(nil)), "user_id", 0, testNow)
	if err != nil || tok.Key != RevocationKey(map[string]any{"jti": "j"}, "") {
		t.Fatalf("PrecheckToken's key is not the jti's: %v", err)
	}
}
