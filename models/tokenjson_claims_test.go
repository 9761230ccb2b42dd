package models

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeClaimsCases add to decodeObjectCases the numbers on both sides of
// shortInt's rules and the strings on both sides of knownName/knownValue.
var decodeClaimsCases = []string{
	`{"a":0,"b":-0,"c":1,"d":-1,"e":255,"f":256,"g":-256}`,
	`{"a":123456789012345,"b":-123456789012345,"c":1234567890123456,"d":-1234567890123456}`,
	`{"a":999999999999999,"b":9007199254740993,"c":9223372036854775808,"d":-9223372036854775809}`,
	`{"a":1.0,"b":1e3,"c":1E3,"d":-0.0,"e":1e999,"f":-1e999,"g":1.5,"h":0e0}`,
	`{"l":[0,-0,1,12345678901234567890,{"x":7,"y":-0}],"o":{"n":42}}`,
	`{"alg":"HS256","typ":"JWT","kid":"JWT","x":"HS2567","y":"HS25","z":"access\u0000","w":"acc\u0065ss"}`,
	`{"token_type":"refresh","t2":"access","v":"EdDSA","e":"","long":"abcdefghij","u":"\u00e9"}`,
	"{\"al\xffg\":\"HS\xff256\",\"exp\":1}",
	`{"\u0065xp":1,"i\u0061t":2,"user_id":"JWT"}`,
}

// TestDecodeClaimsAgrees: decodeClaims gives what decodeObject(b, true)
// gives once plainNumbers has run, types included, and leaves the same
// texts to encoding/json.
func TestDecodeClaimsAgrees(t *testing.T) {
	for _, in := range append(append([]string(nil), decodeObjectCases...), decodeClaimsCases...) {
		t.Run(in, func(t *testing.T) {
			if err := checkShape([]byte(in), MaxClaimsDepth); err != nil {
				t.Fatalf("case is not a valid token object: %v", err)
			}
			decodeClaimsAgree(t, []byte(in))
		})
	}
}

func decodeClaimsAgree(t *testing.T, b []byte) {
	t.Helper()
	want, wantOK := refDecodeObject(b, true)
	got, plain, gotOK := decodeClaims(b)
	if gotOK != wantOK {
		t.Fatalf("decodeClaims(%q) ok=%v, decodeObject ok=%v", b, gotOK, wantOK)
	}
	if !gotOK {
		return
	}
	if plain == hasJSONNumber(map[string]any(got)) {
		t.Fatalf("decodeClaims(%q) plain=%v: %#v", b, plain, got)
	}
	if !reflect.DeepEqual(plainNumbers(map[string]any(got)), refPlainNumbers(map[string]any(want))) {
		t.Fatalf("decodeClaims(%q):\n got %#v\nwant %#v", b, got, want)
	}
	for _, useNumber := range []bool{true, false} { // decodeObject itself is unchanged
		g, gok := decodeObject(b, useNumber)
		w, wok := refDecodeObject(b, useNumber)
		if gok != wok || !reflect.DeepEqual(g, w) {
			t.Fatalf("decodeObject(%q, %v):\n got %#v\nwant %#v", b, useNumber, g, w)
		}
	}
}

// hasJSONNumber reports whether v holds a json.Number at any depth.
func hasJSONNumber(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return true
	case map[string]any:
		for _, e := range x {
			if hasJSONNumber(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasJSONNumber(e) {
				return true
			}
		}
	}
	return false
}

// FuzzDecodeClaimsAgrees: TestDecodeClaimsAgrees on every object
// checkShape accepts.
func FuzzDecodeClaimsAgrees(f *testing.F) {
	for _, c := range append(append([]string(nil), decodeObjectCases...), decodeClaimsCases...) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkShape(b, MaxClaimsDepth) != nil {
			return
		}
		decodeClaimsAgree(t, b)
	})
}
