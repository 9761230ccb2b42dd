package models

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeObject decodes b, a JSON object that checkShape has accepted (valid
// JSON, bounded depth), into what json.Unmarshal into a map[string]any
// gives: objects as map[string]any, arrays as []any, numbers as
// json.Number when useNumber is set (json.Decoder.UseNumber), else
// float64. It is one pass without reflection; a string with an escape or
// invalid UTF-8 is unquoted by encoding/json itself. ok is false when it
// leaves the whole text to encoding/json (a number float64 cannot hold).
func decodeObject(b []byte, useNumber bool) (m map[string]any, ok bool) {
	d := objDecoder{b: b, useNumber: useNumber}
	return d.top()
}

// decodeClaims is decodeObject(b, true) but for a number spelt as a short
// integer (see shortInt), which it decodes to the int64 plainNumbers would
// turn its json.Number into: 8 bytes boxed instead of a string and its box
// (2 allocations), no strconv.ParseInt later, and checkTimes reads exp, nbf
// and iat without golang-jwt's float parsing and *NumericDate (with
// claimTime: 4.6k Ir and 8 allocations less per SimpleJWT token). plainNumbers(decodeClaims(b)) equals
// plainNumbers(decodeObject(b, true)) (FuzzDecodeClaimsAgrees). plain
// reports that m holds no json.Number at all, so plainNumbers has nothing
// to do (its walk of the map cost 0.8k Ir per token).
func decodeClaims(b []byte) (m map[string]any, plain, ok bool) {
	d := objDecoder{b: b, useNumber: true, shortInts: true}
	m, ok = d.top()
	return m, d.numbers == 0, ok
}

func (d *objDecoder) top() (map[string]any, bool) {
	b := d.b
	d.skip()
	if d.i >= len(b) || b[d.i] != '{' {
		return nil, false
	}
	v, ok := d.object()
	return v, ok
}

// objDecoder reads one JSON text known to be valid.
type objDecoder struct {
	b         []byte
	i         int
	useNumber bool
	shortInts bool // decodeClaims: short integers as int64
	numbers   int  // json.Numbers made
}

func (d *objDecoder) skip() { d.i = skipSpace(d.b, d.i) }

func (d *objDecoder) value() (any, bool) {
	d.skip()
	if d.i >= len(d.b) {
		return nil, false
	}
	switch d.b[d.i] {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		if v, ok := d.knownValue(); ok {
			return v, true
		}
		return d.str()
	case 't':
		d.i += len("true")
		return true, true
	case 'f':
		d.i += len("false")
		return false, true
	case 'n':
		d.i += len("null")
		return nil, true
	}
	return d.number()
}

func (d *objDecoder) object() (map[string]any, bool) {
	m := map[string]any{}
	d.i++ // {
	d.skip()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, true
	}
	for d.i < len(d.b) {
		d.skip()
		k, ok := d.str()
		if !ok {
			return nil, false
		}
		d.skip()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, false
		}
		d.i++
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		m[k] = v
		if done, ok := d.after('}'); !ok {
			return nil, false
		} else if done {
			return m, true
		}
	}
	return nil, false
}

// after reads what follows a member or element: a comma (more follow) or
// closer (done); anything else is not ok.
func (d *objDecoder) after(closer byte) (done, ok bool) {
	d.skip()
	if d.i >= len(d.b) {
		return false, false
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return false, true
	case closer:
		d.i++
		return true, true
	}
	return false, false
}

func (d *objDecoder) array() ([]any, bool) {
	a := make([]any, 0) // encoding/json: [] is an empty slice, not nil
	d.i++               // [
	d.skip()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, true
	}
	for d.i < len(d.b) {
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		a = append(a, v)
		if done, ok := d.after(']'); !ok {
			return nil, false
		} else if done {
			return a, true
		}
	}
	return nil, false
}

// str reads a string at d.i. One without escapes and of valid UTF-8 is its
// bytes; any other is unquoted by encoding/json (escapes, surrogates,
// invalid UTF-8 as U+FFFD).
func (d *objDecoder) str() (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	end, escaped := stringEnd(d.b, d.i)
	if end < 0 {
		return "", false
	}
	quoted := d.b[d.i : end+1]
	d.i = end + 1
	inner := quoted[1 : len(quoted)-1]
	if !escaped || (!hasBackslash(inner) && utf8.Valid(inner)) {
		if k, ok := knownName(inner); ok {
			return k, true
		}
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", false
	}
	return s, true
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func (d *objDecoder) number() (any, bool) {
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			d.i++
			continue
		}
		break
	}
	if d.i == start {
		return nil, false
	}
	if d.shortInts {
		if n, ok := shortInt(d.b[start:d.i]); ok {
			return n, true
		}
	}
	text := string(d.b[start:d.i])
	if d.useNumber {
		d.numbers++
		return json.Number(text), true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, false // out of range: encoding/json's error, not ours to copy
	}
	return f, true
}

// maxShortIntDigits bounds shortInt: 15 digits are below 2^53, so the
// int64 is also exactly the float64 golang-jwt reads the text as.
const maxShortIntDigits = 15

// shortInt returns the value of a number spelt -?[1-9][0-9]{0,14} or 0:
// the texts whose json.Number.Int64 succeeds and whose
// strconv.FormatInt(Int64()) is the text itself (so IDString gives the
// same user id), and |n| < 2^53. -0 is not one: IDString would give "0",
// not "-0". b is a number checkShape accepted (JSON's grammar).
func shortInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > maxShortIntDigits || (b[0] == '0' && (len(b) > 1 || neg)) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// knownName returns the constant string for a header or claim name that
// nearly every token has, so decoding it allocates nothing (switch
// string(b) on a []byte does not allocate); other names are not ok.
func knownName(b []byte) (string, bool) {
	switch string(b) {
	case "alg":
		return "alg", true
	case "typ":
		return "typ", true
	case "kid":
		return "kid", true
	case "token_type":
		return "token_type", true
	case "exp":
		return "exp", true
	case "iat":
		return "iat", true
	case "nbf":
		return "nbf", true
	case "jti":
		return "jti", true
	case "user_id":
		return "user_id", true
	case "iss":
		return "iss", true
	case "aud":
		return "aud", true
	case "sub":
		return "sub", true
	case "azp":
		return "azp", true
	case "scope":
		return "scope", true
	case "sid":
		return "sid", true
	case "roles":
		return "roles", true
	}
	return "", false
}

// knownValue reads, at d.i, a string value that is one of the common
// header and claim values (typ, token_type, alg names) as a constant
// boxed once by the compiler: no string and no interface allocation. Any
// other string is left to str (not ok, d.i unchanged).
func (d *objDecoder) knownValue() (any, bool) {
	rest := d.b[d.i+1:]
	end := 0
	for end < len(rest) && end < 8 && rest[end] != '"' && rest[end] != '\\' && rest[end] < 0x80 {
		end++
	}
	if end == len(rest) || rest[end] != '"' {
		return nil, false
	}
	var v any
	switch string(rest[:end]) {
	case "JWT":
		v = "JWT"
	case "access":
		v = "access"
	case "refresh":
		v = "refresh"
	case "HS256":
		v = "HS256"
	case "HS384":
		v = "HS384"
	case "HS512":
		v = "HS512"
	case "RS256":
		v = "RS256"
	case "RS384":
		v = "RS384"
	case "RS512":
		v = "RS512"
	case "ES256":
		v = "ES256"
	case "ES384":
		v = "ES384"
	case "ES512":
		v = "ES512"
	case "PS256":
		v = "PS256"
	case "PS384":
		v = "PS384"
	case "PS512":
		v = "PS512"
	case "EdDSA":
		v = "EdDSA"
	default:
		return nil, false
	}
	d.i += 1 + end + 1
	return v, true
}
