package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/models"
	"jwtgate/remote"
)

// browserTokens serves the token endpoints' browser side: cookies instead
// of tokens in bodies for requests that carry an Origin (browsers send it
// on every POST); logout; password change and reset.
type browserTokens struct {
	b       *browser // nil: browser mode off
	log     *slog.Logger
	rl      relayer
	m       mirror
	cr      credentials
	maxBody int64
	// loginUser fetches and mirrors the user of a fresh access token.
	loginUser func(ctx context.Context, access string) (models.User, bool)
	resetURL  string
	// userIDClaim is auth.user_id_claim; forgetUser drops a user's cached
	// record (after a password change).
	userIDClaim string
	forgetUser  func(id string)
	// revokeUser refuses, from now on, every token issued before now to
	// the user whose verified access token raw is (the per-user cutoff).
	revokeUser func(ctx context.Context, raw string) error
	now        func() time.Time
	// oidc refreshes and revokes the sessions the provider login made
	// (their refresh cookie is marked); nil when oidc is off.
	oidc *oidcLogin
}

// fromBrowser reports whether c is a browser request in browser mode.
func (bt *browserTokens) fromBrowser(c *gin.Context) bool {
	return bt.b != nil && len(c.Request.Header.Values("Origin")) > 0
}

// relay calls the auth service with body; on failure it has answered.
func (bt *browserTokens) relay(c *gin.Context, e remote.Endpoint, contentType string, body []byte) (remote.Response, bool) {
	hdr := http.Header{}
	for _, k := range relayHeaders {
		if v := c.Request.Header.Values(k); len(v) > 0 {
			hdr[k] = v
		}
	}
	hdr.Set("X-Forwarded-For", c.ClientIP())
	resp, err := bt.rl.Relay(c.Request.Context(), e, contentType, body, hdr)
	if err != nil {
		fail(c, bt.log, err)
		return resp, false
	}
	return resp, true
}

// login wraps POST /auth/token/: a browser request's tokens go into
// HttpOnly cookies (refresh always, access with access_cookie, where the
// body then names the user instead), with a fresh CSRF cookie. Other
// requests go to next (the plain relay).
func (bt *browserTokens) login(next gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !bt.fromBrowser(c) {
			next(c)
			return
		}
		if !bt.b.originAllowed(requestOrigin(c.Request.Header), c.Request.Host) {
			errOriginNotAllowed.abort(c)
			return
		}
		body, ok := readSmallBody(c, bt.log, bt.maxBody)
		if !ok {
			return
		}
		resp, ok := bt.relay(c, remote.EndpointToken, c.ContentType(), body)
		if !ok {
			return
		}
		if resp.Status != http.StatusOK {
			writeRemote(c.Writer, resp)
			return
		}
		bt.b.setCSRF(c.Writer)
		bt.writeTokens(c, resp, true)
	}
}

// writeTokens moves the tokens of a 200 token answer into cookies and
// sends the rest of the body. withUser adds {"user": ...} when the access
// token went into its cookie.
func (bt *browserTokens) writeTokens(c *gin.Context, resp remote.Response, withUser bool) {
	var m map[string]any
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		writeRemote(c.Writer, resp) // not a token answer: passed on as is
		return
	}
	if s, _ := m["refresh"].(string); s != "" {
		bt.b.setRefresh(c.Writer, s)
		delete(m, "refresh")
	}
	access, _ := m["access"].(string)
	if access != "" && bt.b.cfg.AccessCookie {
		bt.b.setAccess(c.Writer, access)
		delete(m, "access")
	}
	if withUser && access != "" && bt.loginUser != nil {
		if u, ok := bt.loginUser(c.Request.Context(), access); ok {
			m["user"] = userJSON(u)
		}
	}
	out, _ := json.Marshal(m)
	resp.Body = out
	resp.Header = resp.Header.Clone()
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	resp.Header.Set("Content-Type", "application/json")
	writeRemote(c.Writer, resp)
}

// userJSON is the logged-in user as a login answer names it.
func userJSON(u models.User) map[string]any {
	return map[string]any{
		"id": u.ID, "email": u.Email, "username": u.Username, "first_name": u.FirstName,
		"last_name": u.LastName, "is_staff": u.IsStaff, "is_superuser": u.IsSuperuser,
	}
}

// refresh wraps POST /auth/token/refresh/: a browser request refreshes
// from the refresh cookie (CSRF and Origin checked; a body token is
// ignored), a rotated refresh token rewrites the cookie, and a refresh
// the auth service refuses clears the token cookies. Other requests go to
// next.
func (bt *browserTokens) refresh(next gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !bt.fromBrowser(c) {
			next(c)
			return
		}
		if err := bt.b.guard(c.Request.Header, c.Request.Host); err != nil {
			fail(c, bt.log, err)
			return
		}
		if _, ok := readSmallBody(c, bt.log, bt.maxBody); !ok {
			return
		}
		tok, twice := cookie(c.Request.Header, bt.b.cfg.RefreshCookie.Name)
		if twice {
			errCookieTwice.abort(c)
			return
		}
		if tok == "" {
			errNoRefreshToken.abort(c)
			return
		}
		resp, ok := bt.exchange(c, tok)
		if !ok {
			return
		}
		if resp.Status == http.StatusOK {
			bt.writeTokens(c, resp, false)
			return
		}
		_, provider := unmarkRefresh(tok)
		// A provider session refused for its user (inactive: 403) has
		// ended too: its token was revoked at the provider.
		if resp.Status == http.StatusUnauthorized || provider && resp.Status == http.StatusForbidden {
			bt.b.setCookie(c.Writer, bt.b.cfg.RefreshCookie.Name, "", bt.b.cfg.RefreshCookie.Path, -1, true)
			bt.b.setCookie(c.Writer, bt.b.cfg.AccessCookieName, "", "/", -1, true)
		}
		writeRemote(c.Writer, resp)
	}
}

// exchange trades the refresh cookie's token for new tokens where it was
// issued: a marked one at the provider (oidc_refresh.go), any other at the
// auth service. The answer is the auth service's shape either way; on an
// error it has answered.
func (bt *browserTokens) exchange(c *gin.Context, tok string) (remote.Response, bool) {
	if stamped, provider := strings.CutPrefix(tok, oidcRefreshMark); provider && bt.oidc != nil {
		access, _ := cookie(c.Request.Header, bt.b.cfg.AccessCookieName)
		resp, err := bt.oidc.refreshSession(c.Request.Context(), stamped, access)
		if err != nil {
			fail(c, bt.log, err)
			return resp, false
		}
		return resp, true
	}
	body, _ := json.Marshal(map[string]string{"refresh": tok})
	return bt.relay(c, remote.EndpointRefresh, "application/json", body)
}

// sessionTokens returns the refresh and access tokens a logout or
// password change acts on: the body's refresh (any client), else the
// refresh cookie; the token header's access token, else the access
// cookie. checked is false when it has answered (CSRF, Origin, a cookie
// twice): a browser request that uses a cookie is guarded.
func (bt *browserTokens) sessionTokens(c *gin.Context, body []byte) (refresh, access string, checked bool) {
	h := c.Request.Header
	for _, raw := range tokensIn(body) {
		if t, err := models.TokenClaims(raw); err == nil && t["token_type"] == "refresh" && refresh == "" {
			refresh = raw
		}
	}
	access, _, _ = bt.cr.extract(h)
	if bt.b == nil {
		return refresh, access, true
	}
	rc, twiceR := cookie(h, bt.b.cfg.RefreshCookie.Name)
	ac, twiceA := cookie(h, bt.b.cfg.AccessCookieName)
	usesCookie := (refresh == "" && (rc != "" || twiceR)) || (access == "" && (ac != "" || twiceA))
	if usesCookie || bt.fromBrowser(c) {
		if err := bt.b.guard(h, c.Request.Host); err != nil && (usesCookie || errorIs(err, errOriginNotAllowed)) {
			fail(c, bt.log, err)
			return "", "", false
		}
	}
	if (refresh == "" && twiceR) || (access == "" && twiceA) {
		errCookieTwice.abort(c)
		return "", "", false
	}
	if refresh == "" {
		refresh = rc
	}
	if access == "" {
		access = ac
	}
	return refresh, access, true
}

// errorIs reports whether err is the apiError want.
func errorIs(err error, want *apiError) bool {
	ae, ok := err.(*apiError)
	return ok && ae == want
}

// logout serves POST /auth/token/logout/: blacklists the refresh token
// (body or cookie) at the auth service, best effort; revokes the access
// token (token header or cookie) through authn (Revoke verifies it first:
// only a token that verifies is recorded); clears every cookie the
// gateway sets; answers 200 {"detail": "Logged out."}, again on a second
// call.
func (bt *browserTokens) logout(c *gin.Context) {
	body, ok := readSmallBody(c, bt.log, bt.maxBody)
	if !ok {
		return
	}
	refresh, access, ok := bt.sessionTokens(c, body)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(c.Request.Context())
	bt.endSession(c, ctx, refresh, access)
	if bt.b != nil {
		bt.b.clearCookies(c.Writer)
	}
	c.JSON(http.StatusOK, gin.H{"detail": "Logged out."})
}

// endSession blacklists refresh (best effort: a failure is logged) and
// revokes access and refresh at the edge. A refresh token the provider
// login made is revoked at the provider instead (best effort too).
func (bt *browserTokens) endSession(c *gin.Context, ctx context.Context, refresh, access string) {
	if raw, provider := unmarkRefresh(refresh); provider {
		if bt.oidc != nil && bt.oidc.cl.revocation != "" {
			if err := bt.oidc.revokeAtProvider(ctx, raw); err != nil {
				bt.log.WarnContext(ctx, "logout: could not revoke the refresh token at the provider; cookies cleared anyway", "err", err)
			}
		}
		refresh = ""
	}
	if refresh != "" {
		b, _ := json.Marshal(map[string]string{"refresh": refresh})
		hdr := http.Header{}
		if v := c.Request.Header.Get(headerRequestID); v != "" {
			hdr.Set(headerRequestID, v)
		}
		resp, err := bt.rl.Relay(ctx, remote.EndpointBlacklist, "application/json", b, hdr)
		switch {
		case err != nil:
			bt.log.WarnContext(ctx, "logout: could not blacklist the refresh token; cookies cleared anyway", "err", err)
		case resp.Status != http.StatusOK:
			bt.log.InfoContext(ctx, "logout: the auth service did not blacklist the refresh token", "status", resp.Status)
		}
		bt.m.Revoke(ctx, refresh)
	}
	if access != "" {
		bt.m.Revoke(ctx, access)
	}
}

// passwordChange serves POST /auth/password-change/: the body goes to
// auth_service.password_change_path unchanged, its answer comes back
// unchanged. On success the session's tokens (the token header's or
// access cookie's access token, the body's or cookie's refresh token) are
// revoked, as on logout, and the cookies cleared; when the request carries
// a valid access token, its user's other sessions end too (every token
// issued before now is refused: the per-user cutoff).
func (bt *browserTokens) passwordChange(c *gin.Context) {
	body, ok := readSmallBody(c, bt.log, bt.maxBody)
	if !ok {
		return
	}
	refresh, access, ok := bt.sessionTokens(c, nil)
	if !ok {
		return
	}
	resp, ok := bt.relay(c, remote.EndpointPasswordChange, c.ContentType(), body)
	if !ok {
		return
	}
	if resp.Status >= 200 && resp.Status < 300 {
		ctx := context.WithoutCancel(c.Request.Context())
		if access != "" && bt.revokeUser != nil {
			// Before endSession, which revokes this very access token.
			if err := bt.revokeUser(ctx, access); err != nil {
				bt.log.WarnContext(ctx, "password changed; could not end the user's other sessions", "err", err)
			}
		}
		bt.endSession(c, ctx, refresh, access)
		if tok, err := models.PrecheckToken(access, bt.userIDClaim, time.Minute, bt.now()); access != "" && err == nil && bt.forgetUser != nil {
			bt.forgetUser(tok.UserID)
		}
		if bt.b != nil {
			bt.b.clearCookies(c.Writer)
		}
	}
	writeRemote(c.Writer, resp)
}

// csrf serves GET /auth/csrf/: a fresh CSRF cookie.
func (bt *browserTokens) csrf(c *gin.Context) {
	bt.b.setCSRF(c.Writer)
	c.JSON(http.StatusOK, gin.H{"detail": "CSRF cookie set."})
}

// passwordReset serves GET /auth/password-reset/: 302 to
// auth_service.password_reset_url, 404 when it is empty.
func (bt *browserTokens) passwordReset(c *gin.Context) {
	if bt.resetURL == "" {
		errNotFound.abort(c)
		return
	}
	c.Redirect(http.StatusFound, bt.resetURL)
}
