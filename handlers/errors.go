// Package handlers owns jwtgate's HTTP surface: the router, the token relay,
// the users endpoints, authentication of API calls and proxying to
// upstreams. It is the only package that imports Gin.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"jwtgate/models"
)

// Error codes of the contract.
const (
	codeNotAuthenticated = "not_authenticated"
	codeTokenNotValid    = "token_not_valid"
	codeUserInactive     = "user_inactive"
	codePermissionDenied = "permission_denied"
	codeNotFound         = "not_found"
	codeParseError       = "parse_error"
	codeBadRequest       = "bad_request"
	codeRequestTimeout   = "request_timeout"
	codeMethodNotAllowed = "method_not_allowed"
	codePayloadTooLarge  = "payload_too_large"
	codeThrottled        = "throttled"
	codeAuthUnavailable  = "auth_service_unavailable"
	codeUpstreamDown     = "upstream_unavailable"
	codeUpstreamTimeout  = "upstream_timeout"
	codeInternal         = "internal_error"
)

// apiError is one of our own error answers: {"detail": ..., "code": ...}.
type apiError struct {
	status int
	code   string
	detail string
	body   []byte // pre-rendered JSON
}

func newAPIError(status int, code, detail string) *apiError {
	body, _ := json.Marshal(struct {
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}{detail, code})
	return &apiError{status: status, code: code, detail: detail, body: body}
}

// The fixed answers, rendered once.
var (
	errNotAuthenticated = newAPIError(http.StatusUnauthorized, codeNotAuthenticated, "Authentication credentials were not provided.")
	errTokenNotValid    = newAPIError(http.StatusUnauthorized, codeTokenNotValid, "Token is invalid or expired")
	errTokenRevoked     = newAPIError(http.StatusUnauthorized, codeTokenNotValid, "Token has been revoked")
	errUserNotFound     = newAPIError(http.StatusUnauthorized, codeTokenNotValid, "User not found")
	errUserInactive     = newAPIError(http.StatusForbidden, codeUserInactive, "User is inactive")
	errPermission       = newAPIError(http.StatusForbidden, codePermissionDenied, "You do not have permission to perform this action.")
	errNotFound         = newAPIError(http.StatusNotFound, codeNotFound, "Not found.")
	errMalformed        = newAPIError(http.StatusBadRequest, codeParseError, "Malformed request.")
	errTooLarge         = newAPIError(http.StatusRequestEntityTooLarge, codePayloadTooLarge, "Request body is too large.")
	errAuthUnavailable  = newAPIError(http.StatusServiceUnavailable, codeAuthUnavailable, "The authentication service is unavailable; try again shortly. Your token was not rejected.")
	errUpstreamDown     = newAPIError(http.StatusBadGateway, codeUpstreamDown, "The upstream service is unavailable.")
	errUpstreamTimeout  = newAPIError(http.StatusGatewayTimeout, codeUpstreamTimeout, "The upstream service did not answer in time.")
	errInternal         = newAPIError(http.StatusInternalServerError, codeInternal, "Internal error.")
)

// authChallenge is sent with every 401, as SimpleJWT does.
const authChallenge = `Bearer realm="api"`

// write sends the error on a plain ResponseWriter.
// Error makes an apiError an error, so a step of the decision can refuse
// with one of our answers directly (browser mode's csrf_failed).
func (e *apiError) Error() string { return e.code + ": " + e.detail }

func (e *apiError) write(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	if e.status == http.StatusUnauthorized {
		h["Www-Authenticate"] = []string{authChallenge}
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(e.body)
}

// abort sends the error and stops the Gin chain.
func (e *apiError) abort(c *gin.Context) {
	c.Abort()
	e.write(c.Writer)
}

// errorFor maps a domain error to our answer: the one place errors become
// statuses. Unexpected errors are logged and answered 500 without detail.
func errorFor(ctx context.Context, log *slog.Logger, err error) *apiError {
	var pe *pathError
	var me *methodError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, models.ErrNotAuthenticated):
		return errNotAuthenticated
	case models.TokenReason(err) == models.ReasonRevoked:
		return errTokenRevoked
	case errors.Is(err, models.ErrTokenInvalid):
		return errTokenNotValid
	case errors.Is(err, models.ErrUserRejected):
		return errUserNotFound
	case errors.Is(err, models.ErrUserInactive):
		return errUserInactive
	case errors.Is(err, models.ErrPermissionDenied):
		return errPermission
	case errors.Is(err, models.ErrNotFound):
		return errNotFound
	case errors.Is(err, errNoRoute):
		return errNotFound
	case errors.As(err, &pe):
		return errUnusualPath(pe.why)
	case errors.As(err, &me):
		return newAPIError(http.StatusMethodNotAllowed, codeMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", me.method))
	case errors.Is(err, errAmbiguousCredential):
		return errCredentialsBadRequest
	case errors.Is(err, errHeaderSpellings):
		return errBadHeaderSpellings
	case errors.Is(err, models.ErrAuthUnavailable):
		log.WarnContext(ctx, "auth service unavailable", "err", err)
		return errAuthUnavailable
	case errors.Is(err, context.Canceled):
		return errAuthUnavailable // the client left; nobody reads this
	case errors.Is(err, context.DeadlineExceeded):
		log.WarnContext(ctx, "auth service timed out", "err", err)
		return errAuthUnavailable
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return errInternal
}
