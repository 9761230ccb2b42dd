package authn

import (
	"reflect"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// spellsRegisteredNameRef is the plain rule: EqualFold with any
// registered name, no length or ASCII shortcut.
func spellsRegisteredNameRef(k string) bool {
	for _, name := range registeredNames {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// registeredNameCases are claim names around the shortcuts: ASCII and
// not, every length from 0 to 13, the Unicode folds of k and s (Kelvin
// sign, long s), invalid UTF-8.
var registeredNameCases = []string{
	"", "i", "is", "iss", "ISS", "Iss", "iSs", "isss", "iss ", " iss", "exp", "EXP", "eXp", "nbf", "NBF", "iat", "IAT",
	"jti", "JTI", "sub", "SUB", "aud", "AUD", "user_id", "token_type", "abc", "xyz", "expiration",
	"iſs", "iſſ", "ſub", "ıss", "İss", "iss\u0000", "\u212a", "jtı", "ex\u2c6f", "e\xffp", "\xff\xfe\xfd", "aud\xff",
	"ſſſſ", "ſuб", "ᴊti", "aͅud", "exp\u0301", "ЕХР", strings.Repeat("ſ", 6), strings.Repeat("a", 12), strings.Repeat("a", 13),
}

// TestSpellsRegisteredName: the shortcuts (length bounds, ASCII names of
// other than three bytes) answer as EqualFold with every name would.
func TestSpellsRegisteredName(t *testing.T) {
	for _, k := range registeredNameCases {
		if got, want := spellsRegisteredName(k), spellsRegisteredNameRef(k); got != want {
			t.Errorf("%q: %v, EqualFold says %v", k, got, want)
		}
	}
}

// FuzzSpellsRegisteredName: the same for any name.
// go test -run '^$' -fuzz FuzzSpellsRegisteredName -fuzztime 60s ./handlers/authn
func FuzzSpellsRegisteredName(f *testing.F) {
	for _, k := range registeredNameCases {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if got, want := spellsRegisteredName(k), spellsRegisteredNameRef(k); got != want {
			t.Fatalf("%q: %v, EqualFold says %v", k, got, want)
		}
	})
}

// signedPartCases are texts with at least one dot.
var signedPartCases = []string{
	".", "..", "...", "a.b", "a.b.c", "a.b.c.d", "a..", ".b.", "..c", "header.claims.signature",
	"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiJ9." + strings.Repeat("s", 342), strings.Repeat(".", 40), "a.b.c.",
}

// TestSignedPart: signedPart is raw[:LastIndexByte(raw, '.')].
func TestSignedPart(t *testing.T) {
	for _, raw := range signedPartCases {
		if got, want := signedPart(raw), raw[:strings.LastIndexByte(raw, '.')]; got != want {
			t.Errorf("%q: %q, want %q", raw, got, want)
		}
	}
}

// FuzzSignedPart: the same for any text with a dot.
// go test -run '^$' -fuzz FuzzSignedPart -fuzztime 60s ./handlers/authn
func FuzzSignedPart(f *testing.F) {
	for _, raw := range signedPartCases {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.Contains(raw, ".") {
			return // both panic: check only ever sees three segments
		}
		if got, want := signedPart(raw), raw[:strings.LastIndexByte(raw, '.')]; got != want {
			t.Fatalf("%q: %q, want %q", raw, got, want)
		}
	})
}

// decodedClaimsSeeds are claims sets around decodeInto's rules.
var decodedClaimsSeeds = []string{
	`{"token_type":"access","exp":1900000000,"iat":1700000000,"jti":"j","user_id":"42","iss":"` + testIssuer + `","aud":"` + testAudience + `"}`,
	`{"exp":1900000000,"user_id":"42","iss":"` + testIssuer + `","aud":["x","` + testAudience + `"]}`,
	`{"exp":1900000000,"user_id":"42","iss":"` + testIssuer + `","aud":"` + testAudience + `","nbf":1700000000,"sub":"s"}`,
	`{"exp":1900000000.5,"user_id":"42","iss":"` + testIssuer + `","aud":"` + testAudience + `"}`,
	`{"exp":1900000000,"EXP":1,"user_id":"42","iss":"` + testIssuer + `","aud":"` + testAudience + `"}`,
	`{"exp":1900000000,"user_id":"42","iſs":"` + testIssuer + `","aud":"` + testAudience + `"}`,
	`{"exp":1900000000,"user_id":"42","iss":"` + testIssuer + `","aud":[1]}`,
	`{"exp":9007199254740993,"user_id":"42","iss":"` + testIssuer + `","aud":"` + testAudience + `"}`,
}

// FuzzDecodedTokenMatchesParse: for any claims text signed with the test
// HS256 secret that the pre-checks accept, the check of the pre-decoded
// token (VerifyToken) refuses or accepts as golang-jwt's decoding does
// (Verify), and when decodeInto takes the decoded claims they equal
// golang-jwt's.
// go test -run '^$' -fuzz FuzzDecodedTokenMatchesParse -fuzztime 60s ./handlers/authn
func FuzzDecodedTokenMatchesParse(f *testing.F) {
	l := staticLocal(f)
	for _, c := range decodedClaimsSeeds {
		f.Add(c)
	}
	header := segment(`{"alg":"HS256","typ":"JWT"}`)
	f.Fuzz(func(t *testing.T, claimsJSON string) {
		raw := signSegments(t, jwt.SigningMethodHS256, []byte(testSecret), header, segment(claimsJSON))
		pre, err := models.PrecheckToken(raw, "user_id", 0, testNow)
		if err != nil {
			return
		}
		fast, slow := reason(t, l.VerifyToken(t.Context(), raw, pre)), reason(t, l.Verify(t.Context(), raw))
		if fast != slow {
			t.Fatalf("%s: pre-decoded %q, golang-jwt's decoding %q", claimsJSON, fast, slow)
		}
		var dc decodedCheck
		if !dc.into(raw, &pre) {
			return
		}
		var std jwt.RegisteredClaims
		if _, _, err := l.single.parser.ParseUnverified(raw, &std); err != nil {
			t.Fatalf("%s: decoded, but golang-jwt cannot: %v", claimsJSON, err)
		}
		if !reflect.DeepEqual(dc.claims, std) {
			t.Fatalf("%s: decoded claims %+v, golang-jwt's %+v", claimsJSON, dc.claims, std)
		}
	})
}
