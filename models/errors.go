// Package models holds jwtgate's domain: settings, the mirrored user, the
// errors every layer speaks, and the database that stores the user mirror.
package models

import "errors"

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
	// ErrUserRejected means the auth service definitively refused to return
	// a user's record (401, 403 or 404): deactivated, deleted, or the token
	// is no longer accepted.
	ErrUserRejected = errors.New("auth service refused the user record")
	// ErrUserInactive means the mirrored user is not active.
	ErrUserInactive = errors.New("user is inactive")
	// ErrPermissionDenied means the caller is authenticated but not allowed.
	ErrPermissionDenied = errors.New("you do not have permission to perform this action")
	// ErrAuthUnavailable means the auth service could not be reached, timed
	// out or answered 5xx. It is never a reason to answer 401.
	ErrAuthUnavailable = errors.New("auth service unavailable")
)
