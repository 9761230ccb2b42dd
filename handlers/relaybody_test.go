package handlers

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTokensRelayBodyDepth: JSON-ish bodies nested deeper than 8 are
// refused, whatever the content type claims, unless it is a flat form
// encoding; brackets inside strings do not count.
func TestTokensRelayBodyDepth(t *testing.T) {
	arr := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	obj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	tests := []struct {
		name, ct, body string
		refused        bool
	}{
		{"login", "application/json", `{"email":"a@b","password":"p"}`, false},
		{"depth 8 arrays", "application/json", arr(8), false},
		{"depth 9 arrays", "application/json", arr(9), true},
		{"depth 8 objects", "application/json", obj(8), false},
		{"depth 9 objects", "application/json", obj(9), true},
		{"1500 deep refresh", "application/json", `{"refresh":` + arr(1500) + `}`, true},
		{"unterminated 1500 deep", "application/json", strings.Repeat("[", 1500), true},
		{"deep after invalid start", "application/json", `{"a":NaN,"b":` + arr(20) + `}`, true},
		{"mixed depth 9", "application/json", `{"a":[{"b":[{"c":[{"d":[{"e":1}]}]}]}]}`, true},
		{"siblings do not add up", "application/json", `{"a":` + arr(7) + `,"b":` + arr(7) + `}`, false},
		{"brackets in a password", "application/json", `{"email":"a@b","password":"` + strings.Repeat("[{", 50) + `"}`, false},
		{"escaped quote then brackets in string", "application/json", `{"password":"\"` + strings.Repeat("[", 50) + `"}`, false},
		{"escaped backslash ends string", "application/json", `{"password":"\\"` + `,"x":` + arr(9) + `}`, true},
		{"uppercase type", "Application/JSON", arr(9), true},
		{"text/plain lie", "text/plain", arr(20), true},
		{"no content type", "", arr(20), true},
		{"wildcard type", "*/*", arr(20), true},
		{"application wildcard", "application/*", arr(20), true},
		{"json suffix type", "application/vnd.api+json", arr(20), true},
		{"form with brackets in password", "application/x-www-form-urlencoded", "email=a&password=" + strings.Repeat("[", 50), false},
		{"form, uppercase", "Application/X-WWW-Form-Urlencoded", "password=" + strings.Repeat("[", 50), false},
		{"multipart", "multipart/form-data", strings.Repeat("[", 50), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := relayBodyTooDeep(tt.ct, []byte(tt.body)); got != tt.refused {
				t.Fatalf("refused %v, want %v", got, tt.refused)
			}
		})
	}
}

// FuzzTokensRelayDepth: on valid JSON the byte scanner agrees with a
// decoder's token stream about whether the nesting exceeds the bound.
func FuzzTokensRelayDepth(f *testing.F) {
	for _, s := range []string{`{"refresh":"x"}`, `[[[[[[[[[]]]]]]]]]`, `{"a":"[[[[[[[[[[","b":[1]}`, `"\"[[[["`, `{"p":"\\"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		d := json.NewDecoder(strings.NewReader(s))
		depth, deepest := 0, 0
		for {
			tok, err := d.Token()
			if err != nil {
				break
			}
			switch tok {
			case json.Delim('['), json.Delim('{'):
				depth++
				deepest = max(deepest, depth)
			case json.Delim(']'), json.Delim('}'):
				depth--
			}
		}
		if got, want := jsonDepthExceeds([]byte(s), maxRelayJSONDepth), deepest > maxRelayJSONDepth; got != want {
			t.Fatalf("scanner says %v, decoder depth %d", got, deepest)
		}
	})
}
