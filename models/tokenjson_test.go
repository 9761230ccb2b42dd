package models

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// decodeObjectCases are JSON objects in every shape a token's header or
// claims can take, with the spellings encoding/json reads its own way.
var decodeObjectCases = []string{
	`{}`,
	` {"a" : 1 } `,
	`{"token_type":"access","exp":1795435500,"iat":1795435200,"jti":"j","user_id":42}`,
	`{"n":-1.5e3,"z":0,"big":123456789012345678901234567890,"f":0.1}`,
	`{"t":true,"f":false,"n":null,"s":""}`,
	`{"l":[],"o":{},"ll":[[1,"a"],[]],"oo":{"x":{"y":[null]}}}`,
	`{"esc":"a\"b\\c\/d\u00e9\ud83d\ude00\n"}`,
	`{"\u0061":1}`,
	"{\"bad utf8\":\"\xff\xfe\"}",
	"{\"\xc3\xa9t\xc3\xa9\":\"caf\xc3\xa9\"}",
	`{"lone surrogate":"\ud800"}`,
	`{"nested dup":{"a":1,"a":2}}`,
	`{"realm_access":{"roles":["a","b"]},"resource_access":{"api":{"roles":["x"]}}}`,
}

// TestTokensDecodeObject: decodeObject gives what encoding/json gives, with
// json.Number numbers (the claims) and with float64 (the header).
func TestTokensDecodeObject(t *testing.T) {
	for _, in := range decodeObjectCases {
		t.Run(in, func(t *testing.T) {
			if err := checkShape([]byte(in), MaxClaimsDepth); err != nil {
				t.Fatalf("case is not a valid token object: %v", err)
			}
			for _, useNumber := range []bool{true, false} {
				want, err := referenceDecode([]byte(in), useNumber)
				if err != nil {
					t.Fatal(err)
				}
				got, ok := decodeObject([]byte(in), useNumber)
				if !ok {
					t.Fatalf("useNumber=%v: left to encoding/json", useNumber)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("useNumber=%v:\n got %#v\nwant %#v", useNumber, got, want)
				}
			}
		})
	}
}

func referenceDecode(b []byte, useNumber bool) (map[string]any, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	if useNumber {
		d.UseNumber()
	}
	err := d.Decode(&m)
	return m, err
}

// FuzzDecodeObjectAgrees: on every object checkShape accepts, decodeObject
// either gives encoding/json's result or leaves the text to it.
func FuzzDecodeObjectAgrees(f *testing.F) {
	for _, c := range decodeObjectCases {
		f.Add([]byte(c), true)
	}
	f.Add([]byte(`{"x":1e999}`), false)
	f.Fuzz(func(t *testing.T, b []byte, useNumber bool) {
		if checkShape(b, MaxClaimsDepth) != nil {
			return
		}
		want, err := referenceDecode(b, useNumber)
		got, ok := decodeObject(b, useNumber)
		if !ok {
			return // encoding/json decodes it (or refuses it)
		}
		if err != nil {
			t.Fatalf("decodeObject(%q) accepted what encoding/json refuses: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeObject(%q, %v):\n got %#v\nwant %#v", b, useNumber, got, want)
		}
	})
}
