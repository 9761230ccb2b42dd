package models

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// diffCheck runs PrecheckToken and the pre-change reference on raw and
// fails unless they agree on refusal, reason and every Token field
// (Claims and Header deep-equal, types included).
func diffCheck(t *testing.T, raw, userIDClaim string, leeway time.Duration) {
	t.Helper()
	got, gotErr := PrecheckToken(raw, userIDClaim, leeway, testNow)
	want, wantErr := precheckTokenReference(raw, userIDClaim, leeway, testNow)
	if (gotErr == nil) != (wantErr == nil) || TokenReason(gotErr) != TokenReason(wantErr) {
		t.Fatalf("PrecheckToken(%q, %q, %v): err %v, reference %v", raw, userIDClaim, leeway, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PrecheckToken(%q, %q, %v):\n got %#v\nwant %#v", raw, userIDClaim, leeway, got, want)
	}
	if gotErr == nil && (got.Expires != want.Expires || got.DecodedFrom(raw) != want.DecodedFrom(raw)) {
		t.Fatalf("PrecheckToken(%q): Expires %v (%v) DecodedFrom %v (%v)", raw, got.Expires, want.Expires, got.DecodedFrom(raw), want.DecodedFrom(raw))
	}
}

// diffHeaders are JOSE headers on both sides of each header rule.
var diffHeaders = []string{
	`{"alg":"HS256","typ":"JWT"}`, `{"typ":"JWT","alg":"HS256"}`, `{"alg":"RS256","kid":"k1"}`, `{"alg":"ES256"}`,
	`{"alg":"EdDSA","kid":""}`, `{"alg":"PS512","typ":"at+jwt"}`, `{"alg":"none"}`, `{"alg":"None"}`, `{"alg":"NONE"}`,
	`{"alg":"nOnE","typ":"JWT"}`, `{"alg":""}`, `{"typ":"JWT"}`, `{"alg":5}`, `{"alg":null}`, `{"alg":"HS999"}`,
	`{"alg":"HS256","kid":5}`, `{"alg":"HS256","kid":null}`, `{"alg":"HS256","crit":["exp"]}`, `{"alg":"HS256","crit":[]}`,
	`{"alg":"HS256","crit":"exp"}`, `{"alg":"HS256","crit":[1]}`, `{"alg":"HS256","crit":null}`, `{"alg":"HS256","crit":{"a":1}}`,
	`{"alg":"HS256","crit":[["x"]]}`, `{"alg":"HS256","x":{"a":1}}`, `{"alg":"HS256","x":[1]}`, `{"alg":"HS256","x":{"a":{"b":1}}}`,
	`{"alg":"HS256","alg":"HS256"}`, `{"alg":"HS256","\u0061lg":"none"}`, `{"\u0061lg":"HS256"}`, `{"alg":"HS\u00325\u0036"}`,
	`{"alg":"HS256","n":1e999}`, `{"alg":"HS256","n":-1.5e-3}`, `{"alg":"HS256","n":-0}`, `{"alg":"HS256","n":12345678901234567890}`,
	`{"alg":"HS256","typ":"JWT","cty":"JWT","jku":"https://x","x5u":"u","x5t":"t","jwk":"k"}`,
	`{"alg":"HS256","kid":"\ud800"}`, "{\"alg\":\"HS256\",\"kid\":\"\xff\xfe\"}", "{\"alg\":\"HS256\",\"\xff\":1,\"\xfe\":2}",
	"{\"alg\":\"HS256\",\"kid\":\"\x01\"}", `[]`, `{"alg":"HS256"} x`, `{"alg":"HS256"}{}`, ` {"alg" : "HS256" } `,
	`{"alg":"HS256",}`, `{"alg":"HS256"`, `{"alg":tru}`, `{"alg":"HS256","b":01}`, `{"alg":"HS256","b":1.}`, `{"alg":"HS256","b":.5}`,
	`{"alg":"HS256","b":+1}`, `{"alg":"HS256","b":1e}`, `{"alg":"HS256","b":"\x"}`, `{"alg":"HS256","b":"\u12"}`, ``, `null`,
}

// diffClaimValues are hostile spellings of a claim's value.
var diffClaimValues = []string{
	`0`, `-0`, `1`, `-1`, `42`, `255`, `256`, `1.5`, `-1.5`, `0.0`, `-0.0`, `1e3`, `1E3`, `1e+3`, `1e-7`, `1.0`, `4.0`,
	`1e300`, `-1e300`, `1e999`, `-1e999`, `1e-999`, `9007199254740991`, `9007199254740992`, `9007199254740993`,
	`-9007199254740993`, `123456789012345`, `-123456789012345`, `999999999999999`, `1234567890123456`, `12345678901234567`,
	`9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`, `99999999999999999999`,
	`"123"`, `""`, `"7"`, `"access"`, `"refresh"`, `"\u0061ccess"`, `"acc\u0065ss"`, "\"acc\xffss\"", `null`, `true`, `false`,
	`[]`, `[1]`, `{}`, `{"a":1}`, `[1,2.5,-0,1e400,"x",{"b":null},[]]`,
}

// diffClaims returns claims objects: a SimpleJWT access token's claims with
// one member replaced, removed or added in each hostile way, plus shapes
// (duplicates plain and escaped, nesting, invalid UTF-8).
func diffClaims() []string {
	now := testNow.Unix()
	base := [][2]string{
		{"token_type", `"access"`}, {"exp", fmt.Sprint(now + 300)}, {"iat", fmt.Sprint(now)}, {"jti", `"j"`}, {"user_id", `42`},
	}
	render := func(m [][2]string) string {
		var b strings.Builder
		b.WriteByte('{')
		for i, kv := range m {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", kv[0], kv[1])
		}
		b.WriteByte('}')
		return b.String()
	}
	with := func(name, value string) string {
		m := append([][2]string(nil), base...)
		for i := range m {
			if m[i][0] == name {
				if value == "" {
					return render(append(m[:i:i], m[i+1:]...))
				}
				m[i][1] = value
				return render(m)
			}
		}
		return render(append(m, [2]string{name, value}))
	}
	var out []string
	for _, name := range []string{"exp", "nbf", "iat", "user_id", "sub", "token_type", "jti", "iss", "level"} {
		out = append(out, with(name, ""))
		for _, v := range diffClaimValues {
			out = append(out, with(name, v))
		}
	}
	// Times near the bounds, whole and fractional.
	for _, d := range []float64{-86400, -10, -5.5, -1, -0.5, 0, 0.25, 0.999, 1, 4, 5, 5.5, 6, 10, 11, 60, 3600, 1e6} {
		for _, name := range []string{"exp", "nbf", "iat"} {
			out = append(out, with(name, fmt.Sprint(now+int64(d))), with(name, fmt.Sprintf("%.3f", float64(now)+d)),
				with(name, fmt.Sprintf("%e", float64(now)+d)))
		}
	}
	head := `{"token_type":"access","exp":` + fmt.Sprint(now+300) + `,"iat":` + fmt.Sprint(now) + `,"jti":"j","user_id":42`
	out = append(out,
		head+`,"exp":1}`, head+`,"\u0065xp":1}`, head+`,"user_\u0069d":1}`, head+`,"\u0075ser_id":"x"}`,
		head+`,"iss":"https://issuer.example","aud":["a","b"],"sub":"u-1","nbf":`+fmt.Sprint(now-60)+`}`,
		head+`,"iss":5}`, head+`,"iss":"i","jti":"k"}`,
		head+`,"realm_access":{"roles":["a","b"]},"resource_access":{"api":{"roles":["x"]}}}`,
		head+`,"x":[[[1]]]}`, head+`,"x":[[[[1]]]]}`, head+`,"x":{"y":{"z":{"w":{}}}}}`, head+`,"x":`+strings.Repeat("[", 2000)+`}`,
		head+`,"x":{"a":1,"a":2}}`, head+`,"x":{"n":[1,2.5,-0,1e400,12345678901234567890,"\u00e9"]}}`,
		head+",\"\xff\":1,\"\xfe\":2}", head+",\"caf\xc3\xa9\":\"\xc3\xa9\"}", head+`,"s":"a\"b\\c\/d\u00e9\ud83d\ude00\n"}`,
		head+`,"l":"\ud800"}`, head+"\x00}", head+`}}`, head+`} `, head+`,}`, head+`,"a":01}`, head+`,"a":-}`,
		head+`,"a":1.e5}`, head+`,"a":1e}`, head+`,"a":nul}`, head+`,"a":"`+"\x1f"+`"}`, head+`,"a":"\q"}`,
		`{}`, `[]`, `"x"`, `null`, ` `+head+"}\n\t", `{"user_id":42,"exp":`+fmt.Sprint(now+300)+`}`,
		`{"exp":`+fmt.Sprint(now+300)+`,"exp":`+fmt.Sprint(now+300)+`,"user_id":1}`,
	)
	for i := 0; i < 40; i++ { // past the list of names compared one by one
		head += fmt.Sprintf(`,"n%d":%d`, i, i)
	}
	out = append(out, head+`}`, head+`,"n7":1}`, head+`,"n\u0037":1}`, head+`,"user_id":1}`)
	return out
}

// diffRaws returns whole tokens: every header with the plain claims, every
// claims object with an HS256 header, and bad base64url spellings.
func diffRaws(t testing.TB) []string {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	claims := diffClaims()
	sig := seg("signature-bytes!")
	var out []string
	for _, h := range diffHeaders {
		out = append(out, seg(h)+"."+seg(claims[1])+"."+sig)
	}
	for _, c := range claims {
		out = append(out, seg(diffHeaders[0])+"."+seg(c)+"."+sig, seg(`{"alg":"none"}`)+"."+seg(c)+".")
	}
	good := sign(t, access(nil))
	parts := strings.Split(good, ".")
	for i := range parts {
		for _, edit := range []func(string) string{
			func(s string) string { return s + "=" },
			func(s string) string { return s + "==" },
			func(s string) string { return s[:len(s)/2] + "\r" + s[len(s)/2:] },
			func(s string) string { return s[:len(s)/2] + "\n" + s[len(s)/2:] },
			func(s string) string { return s + "\r\n" },
			func(s string) string { return " " + s },
			func(s string) string { return strings.NewReplacer("-", "+", "_", "/").Replace(s) },
			func(s string) string { return s[:len(s)-1] },
			func(s string) string { return s + "A" },
			func(s string) string { return "" },
		} {
			p := append([]string(nil), parts...)
			p[i] = edit(p[i])
			out = append(out, strings.Join(p, "."))
		}
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		for _, c := range alphabet {
			p := append([]string(nil), parts...)
			p[i] = p[i][:len(p[i])-1] + string(c)
			out = append(out, strings.Join(p, "."))
		}
	}
	out = append(out, good, good+".", good+".x", "a.b", "..", "...", "", ".e30.c2ln", strings.Repeat("a", MaxTokenBytes+1),
		sign(t, access(func(c jwt.MapClaims) { c["user_id"] = int64(9007199254740993) })))
	return out
}

// TestPrecheckMatchesReference: on hostile tokens (see diffHeaders,
// diffClaims, diffRaws), PrecheckToken refuses with the reason the
// pre-change code gave, and returns the same Token field for field.
func TestPrecheckMatchesReference(t *testing.T) {
	raws := diffRaws(t)
	accepted := 0
	for _, raw := range raws {
		for _, leeway := range []time.Duration{0, 10 * time.Second} {
			for _, uidClaim := range []string{"user_id", "sub", "level", "exp"} {
				diffCheck(t, raw, uidClaim, leeway)
			}
		}
		if _, err := precheckTokenReference(raw, "user_id", 0, testNow); err == nil {
			accepted++
		}
	}
	if accepted < 50 || accepted > len(raws)-50 {
		t.Fatalf("%d of %d tokens accepted: the cases do not reach both sides", accepted, len(raws))
	}
}

// FuzzPrecheckMatchesReference: PrecheckToken agrees with the pre-change
// reference on every input. Header and claims are fuzzed as JSON (encoded
// here) to reach the decoders; whole=true fuzzes the raw token instead.
func FuzzPrecheckMatchesReference(f *testing.F) {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, h := range diffHeaders {
		f.Add([]byte(h), []byte(diffClaims()[1]), seg("sig"), uint8(0))
	}
	for _, c := range diffClaims() {
		f.Add([]byte(diffHeaders[0]), []byte(c), seg("sig"), uint8(1))
	}
	for _, raw := range diffRaws(f)[:200] {
		f.Add([]byte(raw), []byte(nil), "", uint8(0x80))
	}
	f.Fuzz(func(t *testing.T, header, claims []byte, sig string, mode uint8) {
		raw := string(header)
		if mode&0x80 == 0 {
			raw = seg(string(header)) + "." + seg(string(claims)) + "." + sig
		}
		uid := [...]string{"user_id", "sub", "exp", "x"}[mode&3]
		leeway := [...]time.Duration{0, 10 * time.Second, time.Hour, -time.Second}[mode>>2&3]
		diffCheck(t, raw, uid, leeway)
	})
}
