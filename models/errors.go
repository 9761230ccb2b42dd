// Package models holds jwtgate's domain: settings, the mirrored user, the
// errors every layer speaks, and the database that stores the user mirror.
package models

import (
	"errors"
	"fmt"
)

// Domain errors. Every layer wraps these with %w; handlers map them to HTTP
// statuses in one place.
var (
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotAuthenticated means the request carried no credentials.
	ErrNotAuthenticated = errors.New("authentication credentials were not provided")
	// ErrTokenInvalid means the token is definitively bad: malformed,
	// expired, of the wrong type, or rejected by the auth service.
	ErrTokenInvalid = errors.New("token is invalid or expired")
	// ErrUserRejected means the auth service said something definitive about
	// the user: deactivated or deleted (SimpleJWT's 401 user_inactive or
	// user_not_found, or a 404). A token it refused is not such a statement.
	ErrUserRejected = errors.New("auth service refused the user record")
	// ErrUserInactive means the mirrored user is not active.
	ErrUserInactive = errors.New("user is inactive")
	// ErrPermissionDenied means the caller is authenticated but not allowed.
	ErrPermissionDenied = errors.New("you do not have permission to perform this action")
	// ErrNoUserSource means the token's issuer has no user endpoint, so the
	// gateway cannot resolve its users (several issuers, see
	// auth.local.issuers[].user_endpoint). It matches ErrPermissionDenied:
	// the token is genuine, but gives no access here.
	ErrNoUserSource = fmt.Errorf("users of this token's issuer cannot be resolved: %w", ErrPermissionDenied)
	// ErrAuthUnavailable means the auth service could not be reached, timed
	// out or answered 5xx. It is never a reason to answer 401.
	ErrAuthUnavailable = errors.New("auth service unavailable")
)
