package models

// The pre-checks as they were before the allocation and instruction cuts
// (commit 9d72810), kept verbatim but renamed as the reference the current
// code must agree with (TestPrecheckMatchesReference,
// FuzzPrecheckMatchesReference). Do not "improve" this file: its value is
// that it is the old code.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

func precheckTokenReference(raw, userIDClaim string, leeway time.Duration, now time.Time) (Token, error) {
	if len(raw) > MaxTokenBytes {
		return Token{}, tokenErr(ReasonTooLarge, "token longer than %d bytes", MaxTokenBytes)
	}
	h, rest, _ := strings.Cut(raw, ".")
	c, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return Token{}, tokenErr(ReasonMalformed, "not three segments")
	}
	if sig == "" {
		return Token{}, tokenErr(ReasonAlgNone, "empty signature")
	}
	// Each segment is decoded once, into one buffer: the shape checks and
	// the JSON decoding below read these bytes (golang-jwt's
	// ParseUnverified would decode header and claims a second time).
	buf := make([]byte, 0, strictB64.DecodedLen(len(h))+strictB64.DecodedLen(len(c))+strictB64.DecodedLen(len(sig)))
	var dec [3][]byte
	for i, seg := range [3]string{h, c, sig} {
		b, err := refDecodeSegment(buf[len(buf):cap(buf)], seg)
		if err != nil {
			return Token{}, tokenErr(ReasonMalformed, "segment %d: %v", i+1, err)
		}
		dec[i], buf = b, buf[:len(buf)+len(b)]
	}
	if err := refCheckShape(dec[0], MaxHeaderDepth); err != nil {
		return Token{}, tokenErr(ReasonMalformed, "header: %v", err)
	}
	if err := refCheckShape(dec[1], MaxClaimsDepth); err != nil {
		return Token{}, tokenErr(ReasonMalformed, "claims: %v", err)
	}
	header, claims, err := refDecodeParts(dec[0], dec[1])
	if err != nil {
		return Token{}, tokenErr(ReasonMalformed, "undecodable header or claims")
	}
	alg, _ := header["alg"].(string)
	if alg == "" || strings.EqualFold(alg, "none") {
		return Token{}, tokenErr(ReasonAlgNone, "alg %q is not accepted", alg)
	}
	if err := refCheckHeader(header); err != nil {
		return Token{}, err
	}
	kid, _ := header["kid"].(string)
	exp, iat, err := refCheckTimes(claims, leeway, now)
	if err != nil {
		return Token{}, err
	}
	if tt, present := claims["token_type"]; present && tt != "access" {
		return Token{}, tokenErr(ReasonWrongTokenType, "token_type is not access")
	}
	uid, ok := IDString(claims[userIDClaim])
	if !ok {
		return Token{}, tokenErr(ReasonNoUserID, "claim %q missing or not a string or number", userIDClaim)
	}
	for k, v := range claims {
		claims[k] = refPlainNumbers(v)
	}
	iss, _ := claims["iss"].(string)
	return Token{Alg: alg, Kid: kid, Claims: claims, UserID: uid, Issuer: iss, Expires: exp, IssuedAt: iat, Key: refRevocationKey(claims, raw),
		Header: header, Signature: dec[2], from: unsafe.StringData(raw), fromLen: len(raw)}, nil
}

func refDecodeParts(header, claimBytes []byte) (map[string]any, jwt.MapClaims, error) {
	h, ok := refDecodeObject(header, false)
	if !ok {
		if err := json.Unmarshal(header, &h); err != nil {
			return nil, nil, fmt.Errorf("header: %w", err)
		}
	}
	c, ok := refDecodeObject(claimBytes, true)
	claims := jwt.MapClaims(c)
	if !ok {
		claims = jwt.MapClaims{}
		d := json.NewDecoder(bytes.NewReader(claimBytes))
		d.UseNumber()
		if err := d.Decode(&claims); err != nil {
			return nil, nil, fmt.Errorf("claims: %w", err)
		}
	}
	alg, ok := h["alg"].(string)
	if !ok || jwt.GetSigningMethod(alg) == nil {
		return nil, nil, errors.New("signing method (alg) unspecified or unavailable")
	}
	return h, claims, nil
}

func refDecodeSegment(dst []byte, seg string) ([]byte, error) {
	if i := strings.IndexAny(seg, "\r\n"); i >= 0 {
		return nil, errors.New("line break in base64url")
	}
	n, err := strictB64.Decode(dst, unsafe.Slice(unsafe.StringData(seg), len(seg))) // read only
	if err != nil {
		return nil, errors.New("not canonical base64url")
	}
	return dst[:n], nil
}

func refCheckHeader(h map[string]any) error {
	for name, v := range h {
		switch x := v.(type) {
		case map[string]any:
			return tokenErr(ReasonMalformed, "header %q is not a scalar", name)
		case []any:
			if name != "crit" {
				return tokenErr(ReasonMalformed, "header %q is not a scalar", name)
			}
			for _, e := range x {
				if _, ok := e.(string); !ok {
					return tokenErr(ReasonMalformed, "header crit is not an array of strings")
				}
			}
			if len(x) == 0 { // RFC 7515 §4.1.11: never an empty list
				return tokenErr(ReasonMalformed, "header crit is empty")
			}
			return tokenErr(ReasonUnsupportedCrit, "header crit names extensions the gateway does not implement")
		default:
			if name == "crit" {
				return tokenErr(ReasonMalformed, "header crit is not an array of strings")
			}
		}
	}
	return nil
}

func refCheckTimes(claims jwt.MapClaims, leeway time.Duration, now time.Time) (time.Time, int64, error) {
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return time.Time{}, 0, tokenErr(ReasonMalformed, "exp is not a number")
	}
	if exp == nil {
		return time.Time{}, 0, tokenErr(ReasonNoExpiry, "exp claim missing")
	}
	if !now.Before(exp.Add(leeway)) {
		return time.Time{}, 0, tokenErr(ReasonExpired, "token expired")
	}
	if nbf, err := claims.GetNotBefore(); err != nil {
		return time.Time{}, 0, tokenErr(ReasonMalformed, "nbf is not a number")
	} else if nbf != nil && now.Add(leeway).Before(nbf.Time) {
		return time.Time{}, 0, tokenErr(ReasonNotYetValid, "token not valid yet")
	}
	iat, err := claims.GetIssuedAt()
	if err != nil {
		return time.Time{}, 0, tokenErr(ReasonMalformed, "iat is not a number")
	}
	if iat == nil {
		return exp.Time, 0, nil
	}
	if now.Add(max(leeway, minIATSkew)).Before(iat.Time) {
		return time.Time{}, 0, tokenErr(ReasonNotYetValid, "token issued in the future")
	}
	return exp.Time, iat.Unix(), nil
}

func refCheckShape(b []byte, maxDepth int) error {
	i := refSkipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return errors.New("not a JSON object")
	}
	var seen refTopNames
	depth := 0
	isName := false // the next string at depth 1 is a name
	for ; i < len(b); i++ {
		switch ch := b[i]; ch {
		case '"':
			end, escaped := refStringEnd(b, i)
			if end < 0 {
				return errors.New("not valid JSON")
			}
			if depth == 1 && isName {
				if dup, name := seen.add(b[i:end+1], escaped); dup {
					return fmt.Errorf("name %q appears twice", name)
				}
				isName = false
			}
			i = end
		case '{', '[':
			depth++
			if depth > maxDepth {
				return fmt.Errorf("nested deeper than %d", maxDepth)
			}
			isName = depth == 1 // the top object opens with a name
		case '}', ']':
			depth--
			if depth == 0 {
				if refSkipSpace(b, i+1) != len(b) {
					return errors.New("data after the JSON object")
				}
				if !json.Valid(b) {
					return errors.New("not valid JSON")
				}
				return nil
			}
		case ',':
			isName = depth == 1
		}
	}
	return errors.New("not valid JSON")
}

func refSkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func refStringEnd(b []byte, start int) (end int, escaped bool) {
	for i := start + 1; i < len(b); i++ {
		switch ch := b[i]; {
		case ch == '\\':
			escaped = true
			i++
		case ch == '"':
			return i, escaped
		case ch >= 0x80:
			escaped = true
		}
	}
	return -1, false
}

const refMaxListedNames = 32

type refTopNames struct {
	list [][]byte
	set  map[string]struct{}
}

func (t *refTopNames) add(quoted []byte, escaped bool) (bool, string) {
	name := quoted[1 : len(quoted)-1]
	if escaped {
		var s string
		if err := json.Unmarshal(quoted, &s); err != nil {
			s = string(name) // invalid JSON: json.Valid refuses it next
		}
		name = []byte(s)
	}
	if t.set != nil {
		if _, ok := t.set[string(name)]; ok {
			return true, string(name)
		}
		t.set[string(name)] = struct{}{}
		return false, ""
	}
	for _, n := range t.list {
		if bytes.Equal(n, name) {
			return true, string(name)
		}
	}
	t.list = append(t.list, name)
	if len(t.list) > refMaxListedNames {
		t.set = make(map[string]struct{}, 2*len(t.list))
		for _, n := range t.list {
			t.set[string(n)] = struct{}{}
		}
		t.list = nil
	}
	return false, ""
}

func refPlainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = refPlainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = refPlainNumbers(e)
		}
	}
	return v
}

func refRevocationKey(claims map[string]any, raw string) [32]byte {
	if jti, _ := claims["jti"].(string); jti != "" {
		iss, _ := claims["iss"].(string)
		var buf [128]byte // on the stack: one heap allocation less per new token
		b := append(append(append(append(buf[:0], "jti\x00"...), iss...), 0), jti...)
		return sha256.Sum256(b)
	}
	return sha256.Sum256([]byte(raw))
}

func refDecodeObject(b []byte, useNumber bool) (m map[string]any, ok bool) {
	d := refObjDecoder{b: b, useNumber: useNumber}
	d.skip()
	if d.i >= len(b) || b[d.i] != '{' {
		return nil, false
	}
	v, ok := d.object()
	return v, ok
}

type refObjDecoder struct {
	b         []byte
	i         int
	useNumber bool
}

func (d *refObjDecoder) skip() { d.i = refSkipSpace(d.b, d.i) }

func (d *refObjDecoder) value() (any, bool) {
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

func (d *refObjDecoder) object() (map[string]any, bool) {
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

func (d *refObjDecoder) after(closer byte) (done, ok bool) {
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

func (d *refObjDecoder) array() ([]any, bool) {
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

func (d *refObjDecoder) str() (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	end, escaped := refStringEnd(d.b, d.i)
	if end < 0 {
		return "", false
	}
	quoted := d.b[d.i : end+1]
	d.i = end + 1
	inner := quoted[1 : len(quoted)-1]
	if !escaped || (!refHasBackslash(inner) && utf8.Valid(inner)) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", false
	}
	return s, true
}

func refHasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func (d *refObjDecoder) number() (any, bool) {
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
	text := string(d.b[start:d.i])
	if d.useNumber {
		return json.Number(text), true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, false // out of range: encoding/json's error, not ours to copy
	}
	return f, true
}
