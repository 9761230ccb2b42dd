package models

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes caps the credential header's value; longer ones are refused
// before any parsing.
const MaxTokenBytes = 8 << 10

// Reasons a token is refused, for logs and metrics.
const (
	ReasonMalformed      = "malformed"
	ReasonTooLarge       = "too_large"
	ReasonAlgNone        = "alg_none"
	ReasonNoExpiry       = "no_expiry"
	ReasonExpired        = "expired"
	ReasonNotYetValid    = "not_yet_valid"
	ReasonWrongTokenType = "wrong_token_type"
	ReasonNoUserID       = "no_user_id"
	ReasonRejected       = "rejected" // the auth service said 401
	ReasonBadSignature   = "bad_signature"
	ReasonRevoked        = "revoked"        // logged out through the gateway
	ReasonInactive       = "inactive"       // the user is not active
	ReasonUserNotFound   = "user_not_found" // the auth service refused the user's record
	// Local verification (verify: local or hybrid).
	ReasonAlgNotAllowed  = "alg_not_allowed"  // alg not in auth.local.algorithms
	ReasonAlgKeyMismatch = "alg_key_mismatch" // alg does not fit the key's type (alg confusion)
	ReasonUnknownKey     = "unknown_key"      // no key of the issuer has the token's kid
	ReasonUnknownIssuer  = "unknown_issuer"   // iss names no trusted issuer
	ReasonWrongIssuer    = "wrong_issuer"
	ReasonWrongAudience  = "wrong_audience"
	// ReasonUnsupportedCrit: the header's crit names an extension the
	// gateway does not implement (it implements none, RFC 7515 §4.1.11).
	ReasonUnsupportedCrit = "unsupported_crit"
)

// Shape bounds of a token's decoded segments, checked by scanning before
// anything is unmarshalled (a 1500-deep array made the auth service's
// recursive JSON parser fail with a 500).
const (
	// MaxHeaderDepth: the JOSE header is a flat object; only crit may hold
	// an array (of strings).
	MaxHeaderDepth = 2
	// MaxClaimsDepth counts the top object. SimpleJWT's claims are flat;
	// Keycloak's realm_access {"roles": [..]} is depth 3 and its
	// resource_access {"<client>": {"roles": [..]}} depth 4, the deepest
	// shape a mainstream issuer emits. Deeper is refused.
	MaxClaimsDepth = 4
	// minIATSkew is the least future skew allowed on iat even with a zero
	// leeway (the default). SimpleJWT truncates iat to whole seconds, so
	// only clock skew puts it ahead; but a gateway whose clock lags the
	// issuer's by a second or two would otherwise refuse every freshly
	// issued token until its clock caught up, for no security gain (whoever
	// holds the signing key can write any iat).
	minIATSkew = 5 * time.Second
)

// TokenError is a definitive refusal of a token; it matches ErrTokenInvalid.
type TokenError struct {
	Reason string
	Detail string
}

// Error describes the refusal without echoing the token.
func (e *TokenError) Error() string { return "token not valid: " + e.Reason + ": " + e.Detail }

// Is makes errors.Is(err, ErrTokenInvalid) true.
func (e *TokenError) Is(target error) bool { return target == ErrTokenInvalid }

func tokenErr(reason, format string, args ...any) error {
	return &TokenError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// TokenReason returns the reason of a TokenError in err's chain, or "".
func TokenReason(err error) string {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}

// Token is an access token that passed the pre-checks. Its signature has
// NOT been checked: only a verifier may say it is genuine.
type Token struct {
	Alg    string
	Kid    string
	Claims jwt.MapClaims
	UserID string
	// Issuer is the iss claim when it is a string, else "".
	Issuer  string
	Expires time.Time
	// IssuedAt is the iat claim in whole Unix seconds (truncated), 0 when
	// absent: a user's cutoff (User.TokensValidAfter) refuses it then.
	IssuedAt int64
	// Key identifies the token for revocation: a hash of (iss, jti) when
	// the token has a jti (SimpleJWT's do), else of its canonical text, so
	// every valid spelling of one token (an ECDSA signature has two) has
	// one key.
	Key [32]byte
	// Header and Signature are the decoded JOSE header and signature of a
	// token PrecheckToken has just checked, so a verifier need not decode
	// the token again; nil for a token rebuilt from a cached verdict.
	Header    map[string]any
	Signature []byte
	// from and fromLen identify the text Header and Signature were decoded
	// from (DecodedFrom); an address, so printing a Token shows no token.
	from    *byte
	fromLen int
}

// DecodedFrom reports whether t's Header and Signature were decoded from
// raw itself (the same string, not merely an equal one): only then may a
// verifier check raw with them instead of decoding raw again.
func (t *Token) DecodedFrom(raw string) bool {
	return t.Header != nil && t.from != nil && t.from == unsafe.StringData(raw) && t.fromLen == len(raw)
}

// RevocationKey returns Token.Key for a token with the given claims and
// text: SHA-256 of iss and jti when jti is a non-empty string, else of raw.
func RevocationKey(claims map[string]any, raw string) [32]byte {
	if jti, _ := claims["jti"].(string); jti != "" {
		iss, _ := claims["iss"].(string)
		var buf [128]byte // on the stack: one heap allocation less per new token
		b := append(append(append(append(buf[:0], "jti\x00"...), iss...), 0), jti...)
		return sha256.Sum256(b)
	}
	return sha256.Sum256([]byte(raw))
}

var precheckParser = jwt.NewParser(jwt.WithJSONNumber())

// decodeParts decodes a token's decoded header and claims segments as
// golang-jwt's ParseUnverified does with jwt.WithJSONNumber (the header with
// json.Unmarshal, the claims with numbers as json.Number), through
// decodeObject (no reflection) unless it leaves them to encoding/json. The
// segments passed checkShape: valid JSON objects. It fails where
// it fails: an alg that is not a string naming a signing method golang-jwt
// knows. Unlike ParseUnverified it takes the bytes already decoded.
func decodeParts(header, claimBytes []byte) (h map[string]any, claims jwt.MapClaims, plain bool, err error) {
	// The encoding/json fallbacks are calls, so that h and claims, whose
	// addresses they take, do not escape here: 2 allocations per token.
	h, ok := decodeObject(header, false)
	if !ok {
		if h, err = unmarshalHeader(header); err != nil {
			return nil, nil, false, fmt.Errorf("header: %w", err)
		}
	}
	c, plain, ok := decodeClaims(claimBytes)
	claims = jwt.MapClaims(c)
	if !ok {
		plain = false
		if claims, err = unmarshalClaims(claimBytes); err != nil {
			return nil, nil, false, fmt.Errorf("claims: %w", err)
		}
	}
	alg, ok := h["alg"].(string)
	if !ok || jwt.GetSigningMethod(alg) == nil {
		return nil, nil, false, errors.New("signing method (alg) unspecified or unavailable")
	}
	return h, claims, plain, nil
}

// unmarshalHeader decodes a header decodeObject left to encoding/json.
func unmarshalHeader(b []byte) (map[string]any, error) {
	var h map[string]any
	err := json.Unmarshal(b, &h)
	return h, err
}

// unmarshalClaims decodes claims decodeClaims left to encoding/json, with
// numbers as json.Number.
func unmarshalClaims(b []byte) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	err := d.Decode(&claims)
	return claims, err
}

// PrecheckToken runs the checks that need no key and no call home: size;
// three canonical base64url segments (no padding, whitespace, standard
// alphabet or non-zero unused bits: one token has one spelling); a header
// and claims that are JSON objects of bounded depth without duplicate
// names; a header whose alg is not none and without crit extensions; exp
// present and not past (with leeway), nbf and iat not in the future;
// token_type "access" when the claim exists (SimpleJWT's verify endpoint
// accepts refresh tokens, so we must refuse them ourselves); and a user id
// claim that is a string or number.
func PrecheckToken(raw, userIDClaim string, leeway time.Duration, now time.Time) (Token, error) {
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
		b, err := decodeSegment(buf[len(buf):cap(buf)], seg)
		if err != nil {
			return Token{}, tokenErr(ReasonMalformed, "segment %d: %v", i+1, err)
		}
		dec[i], buf = b, buf[:len(buf)+len(b)]
	}
	if err := checkShape(dec[0], MaxHeaderDepth); err != nil {
		return Token{}, tokenErr(ReasonMalformed, "header: %v", err)
	}
	if err := checkShape(dec[1], MaxClaimsDepth); err != nil {
		return Token{}, tokenErr(ReasonMalformed, "claims: %v", err)
	}
	header, claims, plain, err := decodeParts(dec[0], dec[1])
	if err != nil {
		return Token{}, tokenErr(ReasonMalformed, "undecodable header or claims")
	}
	alg, _ := header["alg"].(string)
	if alg == "" || strings.EqualFold(alg, "none") {
		return Token{}, tokenErr(ReasonAlgNone, "alg %q is not accepted", alg)
	}
	if err := checkHeader(header); err != nil {
		return Token{}, err
	}
	kid, _ := header["kid"].(string)
	exp, iat, err := checkTimes(claims, leeway, now)
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
	// Short integers are int64 already (decodeClaims); when nothing else
	// was a number (plain) there is nothing to turn.
	if !plain {
		for k, v := range claims {
			switch v.(type) {
			case json.Number:
				claims[k] = plainNumbers(v)
			case map[string]any, []any:
				plainNumbers(v) // in place
			}
		}
	}
	iss, _ := claims["iss"].(string)
	return Token{Alg: alg, Kid: kid, Claims: claims, UserID: uid, Issuer: iss, Expires: exp, IssuedAt: iat, Key: RevocationKey(claims, raw),
		Header: header, Signature: dec[2], from: unsafe.StringData(raw), fromLen: len(raw)}, nil
}

// strictB64 refuses padding, the standard alphabet and non-zero unused
// low bits in the last character.
var strictB64 = base64.RawURLEncoding.Strict()

// decodeSegment decodes one canonical base64url segment into dst, which
// has room for it, and returns the decoded bytes. The decoder skips \r
// and \n, so they are refused first: two strings.IndexByte scans (SIMD),
// as strings.IndexAny walks byte by byte (2.4k Ir per token for the three
// segments of a SimpleJWT token).
func decodeSegment(dst []byte, seg string) ([]byte, error) {
	if strings.IndexByte(seg, '\r') >= 0 || strings.IndexByte(seg, '\n') >= 0 {
		return nil, errors.New("line break in base64url")
	}
	n, err := strictB64.Decode(dst, unsafe.Slice(unsafe.StringData(seg), len(seg))) // read only
	if err != nil {
		return nil, errors.New("not canonical base64url")
	}
	return dst[:n], nil
}

// checkHeader refuses a header that is not flat (a value that is an
// object or array, but crit) and any crit extension: the gateway
// implements none, so a non-empty crit must be refused (RFC 7515
// §4.1.11), and a crit that is not an array of strings is malformed.
func checkHeader(h map[string]any) error {
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

// checkTimes checks exp (present, not past with leeway), nbf (not in the
// future with leeway) and iat (not in the future by more than
// max(leeway, 5s)), and returns exp and iat in whole Unix seconds (0
// when absent).
func checkTimes(claims jwt.MapClaims, leeway time.Duration, now time.Time) (time.Time, int64, error) {
	exp, ok, err := claimTime(claims, "exp")
	if err != nil {
		return time.Time{}, 0, tokenErr(ReasonMalformed, "exp is not a number")
	}
	if !ok {
		return time.Time{}, 0, tokenErr(ReasonNoExpiry, "exp claim missing")
	}
	if !now.Before(exp.Add(leeway)) {
		return time.Time{}, 0, tokenErr(ReasonExpired, "token expired")
	}
	if nbf, ok, err := claimTime(claims, "nbf"); err != nil {
		return time.Time{}, 0, tokenErr(ReasonMalformed, "nbf is not a number")
	} else if ok && now.Add(leeway).Before(nbf) {
		return time.Time{}, 0, tokenErr(ReasonNotYetValid, "token not valid yet")
	}
	iat, ok, err := claimTime(claims, "iat")
	if err != nil {
		return time.Time{}, 0, tokenErr(ReasonMalformed, "iat is not a number")
	}
	if !ok {
		return exp, 0, nil
	}
	if now.Add(max(leeway, minIATSkew)).Before(iat) {
		return time.Time{}, 0, tokenErr(ReasonNotYetValid, "token issued in the future")
	}
	return exp, iat.Unix(), nil
}

// claimTime reads the time claim name ("exp", "nbf" or "iat") as
// golang-jwt v5's MapClaims.GetExpirationTime & co do: ok is false when
// the claim is absent (or a float64 zero, which decodeClaims never makes).
// A short integer n (an int64, which only decodeClaims puts in the map,
// |n| < 2^53) is read here: golang-jwt would parse its text to the
// float64 n exactly, and newNumericDateFromSeconds gives
// time.Unix(n, 0).Truncate(TimePrecision); done here it skips the float
// parsing and the *NumericDate allocation (1.0k Ir per claim). Every other
// value goes to golang-jwt itself.
func claimTime(claims jwt.MapClaims, name string) (time.Time, bool, error) {
	v, present := claims[name]
	if !present {
		return time.Time{}, false, nil
	}
	if n, ok := v.(int64); ok && n > -1<<53 && n < 1<<53 {
		return time.Unix(n, 0).Truncate(jwt.TimePrecision), true, nil
	}
	var d *jwt.NumericDate
	var err error
	switch name {
	case "exp":
		d, err = claims.GetExpirationTime()
	case "nbf":
		d, err = claims.GetNotBefore()
	default:
		d, err = claims.GetIssuedAt()
	}
	if err != nil || d == nil {
		return time.Time{}, false, err
	}
	return d.Time, true, nil
}

// checkShape refuses anything but one JSON object nested at most maxDepth
// deep (the top object is depth 1) with no name twice at the top level.
// It is one pass over the bytes that builds no values (a json.Decoder
// token stream allocated for every token, and an error value at the end of
// each), then json.Valid: no decoder recurses on a hostile nesting, as the
// depth is bounded before anything is decoded.
func checkShape(b []byte, maxDepth int) error {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return errors.New("not a JSON object")
	}
	var seen topNames
	depth := 0
	isName := false // the next string at depth 1 is a name
	for ; i < len(b); i++ {
		switch ch := b[i]; ch {
		case '"':
			end, escaped := stringEnd(b, i)
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
				if skipSpace(b, i+1) != len(b) {
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

// skipSpace returns the index of the first byte of b at or after i that is
// not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at b[start], or -1, and whether the string needs decoding to be
// compared (an escape, or a byte outside ASCII: a decoder turns invalid
// UTF-8 into U+FFFD, so two different byte strings can decode alike).
func stringEnd(b []byte, start int) (end int, escaped bool) {
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

// topNames are the names seen at the top level of a JSON object, compared
// as a decoder reads them. Up to maxListedNames are compared in a list
// held in the struct itself (on the caller's stack: a growing slice cost a
// growslice per doubling, 3 allocations for a SimpleJWT token's claims); a
// hostile token with more names goes to a map, so the check stays linear.
type topNames struct {
	list [maxListedNames][]byte
	n    int // names in list; list is unused once set is made
	set  map[string]struct{}
}

// maxListedNames is how many names topNames compares one by one.
const maxListedNames = 32

// add records the name quoted (with its quotes) and reports whether it was
// seen before, and its decoded text.
func (t *topNames) add(quoted []byte, escaped bool) (bool, string) {
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
	for _, n := range t.list[:t.n] {
		if bytes.Equal(n, name) {
			return true, string(name)
		}
	}
	if t.n < len(t.list) {
		t.list[t.n] = name
		t.n++
		return false, ""
	}
	// The name past maxListedNames: as before, all of them go to a map.
	t.set = make(map[string]struct{}, 2*(t.n+1))
	for _, n := range t.list[:t.n] {
		t.set[string(n)] = struct{}{}
	}
	t.set[string(name)] = struct{}{}
	return false, ""
}

// TokenClaims decodes a token's claims as PrecheckToken returns them
// (numbers as int64 or float64) without checking anything: for a token that
// passed the checks before and whose claims were not kept.
func TokenClaims(raw string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	if _, _, err := precheckParser.ParseUnverified(raw, claims); err != nil {
		return nil, tokenErr(ReasonMalformed, "undecodable header or claims")
	}
	for k, v := range claims {
		claims[k] = plainNumbers(v)
	}
	return claims, nil
}

// plainNumbers turns json.Number values into int64 or float64 so access
// rules can compare them.
func plainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}
