package models

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// checkShapeStream is the json.Decoder token-stream checkShape that the
// single-pass scanner replaced, kept as the reference the scanner must
// agree with (FuzzCheckShapeAgrees).
func checkShapeStream(b []byte, maxDepth int) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	first, err := d.Token()
	if err != nil || first != json.Delim('{') {
		return fmt.Errorf("not a JSON object")
	}
	depth := 1
	names := map[string]bool{}
	isName := true
	for depth > 0 {
		t, err := d.Token()
		if err != nil {
			return fmt.Errorf("not valid JSON")
		}
		if depth == 1 && isName {
			if s, ok := t.(string); ok {
				if names[s] {
					return fmt.Errorf("name %q appears twice", s)
				}
				names[s] = true
				isName = false
				continue
			}
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > maxDepth {
				return fmt.Errorf("nested deeper than %d", maxDepth)
			}
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 1 {
			isName = true
		}
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

// shapeCases are JSON texts on both sides of each rule of checkShape.
var shapeCases = []struct {
	name, json string
	ok         bool
}{
	{"flat", `{"a":1,"b":"x","c":true,"d":null}`, true},
	{"whitespace around", " \t\r\n{ \"a\" : 1 } \n", true},
	{"empty object", `{}`, true},
	{"depth 4", `{"a":{"b":{"c":[1]}}}`, true},
	{"depth 5", `{"a":{"b":{"c":[[1]]}}}`, false},
	{"duplicate", `{"a":1,"a":2}`, false},
	{"duplicate after a nested value", `{"a":{"x":1},"b":[1,"a"],"a":3}`, false},
	{"value equal to a name", `{"a":"a","b":"a"}`, true},
	{"nested duplicates allowed", `{"x":{"a":1,"a":2}}`, true},
	{"duplicate through an escape", `{"a":1,"\u0061":2}`, false},
	{"duplicate through an escaped quote", `{"a\"":1,"a\u0022":2}`, false},
	{"escaped backslash then quote", `{"a\\":1,"b":2}`, true},
	{"invalid UTF-8 names decode alike", "{\"\xff\":1,\"\xfe\":2}", false},
	{"distinct non-ASCII names", `{"é":1,"è":2}`, true},
	{"many names", `{` + manyNames(100, "") + `}`, true},
	{"many names, one twice", `{` + manyNames(100, "n7") + `}`, false},
	{"many names, an escaped twin", `{` + manyNames(100, `n\u0037`) + `}`, false},
	{"array", `[1]`, false},
	{"string", `"x"`, false},
	{"trailing data", `{}{}`, false},
	{"trailing comma", `{"a":1,}`, false},
	{"unterminated", `{"a":1`, false},
	{"unterminated string", `{"a":"x`, false},
	{"bad literal", `{"a":tru}`, false},
	{"bad number", `{"a":01}`, false},
	{"control character in a string", "{\"a\":\"\x01\"}", false},
	{"name not a string", `{1:2}`, false},
	{"empty", ``, false},
	{"brackets inside strings", `{"a":"{{{{{[[[[[","b":"}"}`, true},
}

// manyNames returns n distinct "nK":K members, then a member named extra
// when extra is not "".
func manyNames(n int, extra string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"n%d":%d`, i, i)
	}
	if extra != "" {
		fmt.Fprintf(&b, `,"%s":0`, extra)
	}
	return b.String()
}

// TestTokensShapeScanner: the single-pass scanner accepts and refuses what
// the token stream did, including duplicate names only a decoder sees as
// equal (escapes, invalid UTF-8) and a token with many names.
func TestTokensShapeScanner(t *testing.T) {
	for _, tt := range shapeCases {
		t.Run(tt.name, func(t *testing.T) {
			err := checkShape([]byte(tt.json), MaxClaimsDepth)
			if (err == nil) != tt.ok {
				t.Fatalf("checkShape(%q) = %v, want ok=%v", tt.json, err, tt.ok)
			}
			if ref := checkShapeStream([]byte(tt.json), MaxClaimsDepth); (ref == nil) != tt.ok {
				t.Fatalf("reference checkShape(%q) = %v, want ok=%v", tt.json, ref, tt.ok)
			}
		})
	}
}

// FuzzCheckShapeAgrees: the scanner and the token stream agree on every
// input.
func FuzzCheckShapeAgrees(f *testing.F) {
	for _, tt := range shapeCases {
		f.Add([]byte(tt.json), 4)
	}
	f.Fuzz(func(t *testing.T, b []byte, depth int) {
		depth = 1 + (depth&7+8)%8
		got, want := checkShape(b, depth), checkShapeStream(b, depth)
		if (got == nil) != (want == nil) {
			t.Fatalf("checkShape(%q, %d) = %v, token stream says %v", b, depth, got, want)
		}
	})
}
