package fakeauth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token types, the values of the token_type claim.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
)

const claimTokenType = "token_type"

// IssuePair mints a refresh token for userID and an access token derived from it, exactly as a
// successful login would, without a request. The user need not exist: tokens for deleted or
// never-created users are useful test inputs.
func (s *Server) IssuePair(userID int64) (access, refresh string) {
	r := s.NewClaims(userID, TypeRefresh)
	return s.Sign(s.accessFrom(r)), s.Sign(r)
}

// NewClaims returns the claims the server would mint for userID with the given token type, for a
// test to alter (expire, strip, retype) and pass to Sign.
func (s *Server) NewClaims(userID int64, tokenType string) jwt.MapClaims {
	ttl := s.opt.AccessTTL
	if tokenType == TypeRefresh {
		ttl = s.opt.RefreshTTL
	}
	var uid any = userID
	if s.opt.StringUserID {
		uid = strconv.FormatInt(userID, 10)
	}
	now := s.opt.Now()
	c := jwt.MapClaims{
		claimTokenType:    tokenType,
		"exp":             now.Add(ttl).Unix(),
		"iat":             now.Unix(),
		"jti":             newJTI(),
		s.opt.UserIDClaim: uid,
	}
	if s.opt.Issuer != "" {
		c["iss"] = s.opt.Issuer
	}
	if s.opt.Audience != "" {
		c["aud"] = s.opt.Audience
	}
	return c
}

// Sign signs arbitrary claims with HS256 and the server's secret, for hostile or unusual tokens.
func (s *Server) Sign(claims jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.opt.Secret)
	if err != nil {
		// Only unencodable claims (a channel, a NaN) get here: a bug in the calling test.
		panic(fmt.Sprintf("fakeauth: Sign: %v", err))
	}
	return tok
}

// accessFrom builds an access token from refresh claims as SimpleJWT's RefreshToken.access_token
// does: every claim is copied except token_type, exp and jti. So iat is the refresh token's, which
// after a refresh is older than the access token itself.
func (s *Server) accessFrom(refresh jwt.MapClaims) jwt.MapClaims {
	a := maps.Clone(refresh)
	a[claimTokenType] = TypeAccess
	a["exp"] = s.opt.Now().Add(s.opt.AccessTTL).Unix()
	a["jti"] = newJTI()
	return a
}

// newJTI returns a random UUID4 as 32 hex digits, like Python's uuid4().hex.
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// checkToken validates raw the way SimpleJWT's Token classes do and returns its claims, or the
// user-facing message SimpleJWT would raise. wantType "" is UntypedToken (the verify endpoint);
// blacklist is set for RefreshToken, whose verify() consults the blacklist first.
func (s *Server) checkToken(raw, wantType string, blacklist bool) (jwt.MapClaims, string) {
	claims := jwt.MapClaims{}
	_, err := s.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return s.opt.Secret, nil })
	if err != nil {
		switch {
		case !s.opt.SplitTokenErrors:
			return nil, "Token is invalid or expired"
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, "Token is expired"
		default:
			return nil, "Token is invalid"
		}
	}
	if jti, ok := claims["jti"]; ok && blacklist && s.blacklisted(jti) {
		return nil, "Token is blacklisted"
	}
	if _, ok := claims["exp"]; !ok {
		return nil, "Token has no 'exp' claim"
	}
	if _, ok := claims["jti"]; !ok {
		return nil, "Token has no id"
	}
	if wantType == "" {
		return claims, ""
	}
	typ, ok := claims[claimTokenType]
	if !ok {
		return nil, "Token has no type"
	}
	if typ != wantType {
		return nil, "Token has wrong type"
	}
	return claims, ""
}

func jtiKey(jti any) string {
	if s, ok := jti.(string); ok {
		return s
	}
	return fmt.Sprint(jti)
}

func (s *Server) blacklisted(jti any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blacklist[jtiKey(jti)]
	return ok
}

// Blacklisted reports whether a token's jti is on the blacklist, e.g. after the gateway's logout.
// It does not validate the token.
func (s *Server) Blacklisted(token string) bool {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser(jwt.WithJSONNumber()).ParseUnverified(token, claims); err != nil {
		return false
	}
	jti, ok := claims["jti"]
	return ok && s.blacklisted(jti)
}

// userLookup is the outcome of Django's User.objects.get(id=<claim value>).
type userLookup int

const (
	userFound    userLookup = iota
	userMissing             // DoesNotExist
	userBadValue            // ValueError/TypeError from the id field: an unhandled 500 in Django
)

// lookupClaim finds the user a user id claim names, accepting a number or a numeric string as
// Django's integer primary key does.
func (s *Server) lookupClaim(v any) (User, userLookup) {
	var id int64
	switch x := v.(type) {
	case nil:
		return User{}, userMissing // id=None matches nothing
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			f, ferr := x.Float64()
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
				return User{}, userBadValue
			}
			n = int64(f)
		}
		id = n
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return User{}, userBadValue
		}
		id = n
	default:
		return User{}, userBadValue
	}
	u, ok := s.User(id)
	if !ok {
		return User{}, userMissing
	}
	return u, userFound
}

// truthy is Python's truth value of a decoded JSON claim.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// now is the server clock; a method so that handlers read one source.
func (s *Server) now() time.Time { return s.opt.Now() }
