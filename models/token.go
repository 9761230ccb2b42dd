package models

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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
	Alg     string
	Kid     string
	Claims  jwt.MapClaims
	UserID  string
	Expires time.Time
}

var precheckParser = jwt.NewParser(jwt.WithJSONNumber())

// PrecheckToken runs the checks that need no key and no call home: size,
// three base64url segments, a JSON header whose alg is not none, exp present
// and not past (with leeway), nbf not in the future, token_type "access" when
// the claim exists (SimpleJWT's verify endpoint accepts refresh tokens, so we
// must refuse them ourselves), and a user id claim that is a string or number.
func PrecheckToken(raw, userIDClaim string, leeway time.Duration, now time.Time) (Token, error) {
	if len(raw) > MaxTokenBytes {
		return Token{}, tokenErr(ReasonTooLarge, "token longer than %d bytes", MaxTokenBytes)
	}
	if strings.Count(raw, ".") != 2 {
		return Token{}, tokenErr(ReasonMalformed, "not three segments")
	}
	sig := raw[strings.LastIndexByte(raw, '.')+1:]
	if sig == "" {
		return Token{}, tokenErr(ReasonAlgNone, "empty signature")
	}
	if _, err := base64.RawURLEncoding.DecodeString(sig); err != nil {
		return Token{}, tokenErr(ReasonMalformed, "signature is not base64url")
	}
	claims := jwt.MapClaims{}
	tok, _, err := precheckParser.ParseUnverified(raw, claims)
	if err != nil {
		return Token{}, tokenErr(ReasonMalformed, "undecodable header or claims")
	}
	alg, _ := tok.Header["alg"].(string)
	if alg == "" || strings.EqualFold(alg, "none") {
		return Token{}, tokenErr(ReasonAlgNone, "alg %q is not accepted", alg)
	}
	kid, _ := tok.Header["kid"].(string)
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return Token{}, tokenErr(ReasonMalformed, "exp is not a number")
	}
	if exp == nil {
		return Token{}, tokenErr(ReasonNoExpiry, "exp claim missing")
	}
	if !now.Before(exp.Add(leeway)) {
		return Token{}, tokenErr(ReasonExpired, "token expired")
	}
	if nbf, err := claims.GetNotBefore(); err != nil {
		return Token{}, tokenErr(ReasonMalformed, "nbf is not a number")
	} else if nbf != nil && now.Add(leeway).Before(nbf.Time) {
		return Token{}, tokenErr(ReasonNotYetValid, "token not valid yet")
	}
	if tt, present := claims["token_type"]; present && tt != "access" {
		return Token{}, tokenErr(ReasonWrongTokenType, "token_type is not access")
	}
	uid, ok := IDString(claims[userIDClaim])
	if !ok {
		return Token{}, tokenErr(ReasonNoUserID, "claim %q missing or not a string or number", userIDClaim)
	}
	for k, v := range claims {
		claims[k] = plainNumbers(v)
	}
	return Token{Alg: alg, Kid: kid, Claims: claims, UserID: uid, Expires: exp.Time}, nil
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
