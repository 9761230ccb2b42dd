package remote

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"jwtgate/models"
)

// TestUsersParseUserSimpleJWTBodies classifies the user endpoint's answers
// as SimpleJWT 5.2.2 (rest_framework_simplejwt/authentication.py) writes
// them: only user_inactive, user_not_found and 404 speak about the user; a
// token refused on its way (expired, bad, no code at all) and a 403 must
// never be read as one.
func TestUsersParseUserSimpleJWTBodies(t *testing.T) {
	const expired = `{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken","token_type":"access","message":"Token is invalid or expired"}]}`
	for _, tt := range []struct {
		name     string
		status   int
		body     string
		want     error
		inactive bool // also matches ErrUserInactive
	}{
		{"inactive", 401, `{"detail":"User is inactive","code":"user_inactive"}`, models.ErrUserRejected, true},
		{"deleted", 401, `{"detail":"User not found","code":"user_not_found"}`, models.ErrUserRejected, false},
		{"404 from the view", 404, `{"detail":"Not found."}`, models.ErrUserRejected, false},
		{"expired token", 401, expired, models.ErrTokenInvalid, false},
		{"no user id claim", 401, `{"detail":"Token contained no recognizable user identification","code":"token_not_valid"}`, models.ErrTokenInvalid, false},
		{"bad header", 401, `{"detail":"Authorization header must contain two space-delimited values","code":"bad_authorization_header"}`, models.ErrTokenInvalid, false},
		{"401 without code", 401, `{"detail":"Authentication credentials were not provided."}`, models.ErrTokenInvalid, false},
		{"401 not JSON", 401, `<html>401</html>`, models.ErrTokenInvalid, false},
		{"401 code not a string", 401, `{"code":["user_inactive"]}`, models.ErrTokenInvalid, false},
		{"401 code in another case", 401, `{"code":"USER_INACTIVE"}`, models.ErrTokenInvalid, false},
		{"401 code nested in detail", 401, `{"detail":{"code":"user_inactive"}}`, models.ErrTokenInvalid, false},
		{"403 another user's record", 403, `{"detail":"You do not have permission to perform this action."}`, models.ErrPermissionDenied, false},
		{"403 claiming user_inactive", 403, `{"detail":"User is inactive","code":"user_inactive"}`, models.ErrPermissionDenied, false},
		{"500", 500, `{"detail":"boom"}`, models.ErrAuthUnavailable, false},
		{"200 not a record", 200, `[]`, models.ErrAuthUnavailable, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUser(Response{Status: tt.status, Header: http.Header{}, Body: []byte(tt.body)}, time.Now())
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if errors.Is(err, models.ErrUserInactive) != tt.inactive {
				t.Fatalf("err %v: matches ErrUserInactive = %t, want %t", err, !tt.inactive, tt.inactive)
			}
			if tt.want != models.ErrUserRejected && errors.Is(err, models.ErrUserRejected) {
				t.Fatalf("err %v reads as a statement about the user", err)
			}
		})
	}
}
