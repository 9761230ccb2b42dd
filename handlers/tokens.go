package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/models"
	"jwtgate/remote"
)

// relayer is the part of remote.Client the token endpoints need.
type relayer interface {
	Relay(ctx context.Context, e remote.Endpoint, contentType string, body []byte, hdr http.Header) (remote.Response, error)
	FetchUser(ctx context.Context, token, id string, now time.Time) (models.User, error)
}

// mirror keeps the user mirror and the verify cache in step with token calls.
type mirror interface {
	Mirror(ctx context.Context, u models.User) error
	Revoke(ctx context.Context, raw string)
}

// relayHeaders are the request headers passed on to the auth service. The
// request's own Authorization header is not: token endpoints never look at it.
var relayHeaders = []string{"Accept", "Accept-Language", "X-Request-Id"}

// hopHeaders are never copied from the auth service's answer.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	"X-Request-Id": true, // the client gets the gateway's id, which the auth service received
}

// readSmallBody reads a token endpoint's whole body, bounded by maxBody,
// and puts it back so a later reader (the relay after the login throttle)
// sees it again. On failure it has answered: 413 over the cap, 408 when
// the body timeout passed, 400 for a malformed body, a client gone
// mid-body (the request's fault, never a 5xx) or JSON nested deeper than
// the auth service can parse.
func readSmallBody(c *gin.Context, log *slog.Logger, maxBody int64) ([]byte, bool) {
	if c.Request.ContentLength > maxBody {
		errTooLarge.abort(c)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxBody+1))
	if err != nil {
		log.DebugContext(c.Request.Context(), "malformed request body", "err", err)
		abortBodyError(c, err)
		return nil, false
	}
	if int64(len(body)) > maxBody {
		errTooLarge.abort(c)
		return nil, false
	}
	if relayBodyTooDeep(c.ContentType(), body) {
		errBodyTooDeep.abort(c)
		return nil, false
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	c.Request.ContentLength = int64(len(body))
	return body, true
}

// handleRelay passes a token call to the auth service and its answer back
// unchanged. after runs on a 200 with the request and response bodies.
func handleRelay(log *slog.Logger, rl relayer, e remote.Endpoint, maxBody int64, after func(ctx context.Context, req, resp []byte)) gin.HandlerFunc {
	return func(c *gin.Context) {
		body, ok := readSmallBody(c, log, maxBody)
		if !ok {
			return
		}
		hdr := http.Header{}
		for _, k := range relayHeaders {
			if v := c.Request.Header.Values(k); len(v) > 0 {
				hdr[k] = v
			}
		}
		hdr.Set("X-Forwarded-For", c.ClientIP())
		resp, err := rl.Relay(c.Request.Context(), e, c.ContentType(), body, hdr)
		if err != nil {
			fail(c, log, err)
			return
		}
		if resp.Status == http.StatusOK && after != nil {
			after(c.Request.Context(), body, resp.Body)
		}
		writeRemote(c.Writer, resp)
	}
}

// mirrorLogin fetches the user of a freshly issued access token and upserts
// it. A failure is logged, never turned into a failed login: the tokens are
// the auth service's answer, and the user is fetched again on first use.
func mirrorLogin(log *slog.Logger, rl relayer, m mirror, userIDClaim string, now func() time.Time) func(ctx context.Context, _, resp []byte) {
	user := loginUser(log, rl, m, userIDClaim, now)
	return func(ctx context.Context, _, resp []byte) {
		var pair struct {
			Access string `json:"access"`
		}
		if err := json.Unmarshal(resp, &pair); err != nil || pair.Access == "" {
			log.WarnContext(ctx, "login answer has no access token; user not mirrored")
			return
		}
		user(ctx, pair.Access)
	}
}

// loginUser returns the function that fetches and mirrors the user of a
// freshly issued access token (ok false, logged, when it cannot).
func loginUser(log *slog.Logger, rl relayer, m mirror, userIDClaim string, now func() time.Time) func(ctx context.Context, access string) (models.User, bool) {
	return func(ctx context.Context, access string) (models.User, bool) {
		tok, err := models.PrecheckToken(access, userIDClaim, time.Minute, now())
		if err != nil {
			log.WarnContext(ctx, "login access token failed pre-checks; user not mirrored", "reason", models.TokenReason(err))
			return models.User{}, false
		}
		ctx = context.WithoutCancel(ctx) // finish the write even if the client hangs up
		u, err := rl.FetchUser(ctx, access, tok.UserID, now())
		if err != nil {
			log.WarnContext(ctx, "could not fetch user after login; will fetch on first use", "user_id", tok.UserID, "err", err)
			return models.User{}, false
		}
		if u.ID != tok.UserID {
			log.WarnContext(ctx, "auth service returned another user's record after login", "user_id", tok.UserID, "record_id", u.ID)
			return models.User{}, false
		}
		_ = m.Mirror(ctx, u) // logged by Mirror; the user is cached in memory regardless
		return u, true
	}
}

// forgetBlacklisted revokes every token named in a successful blacklist
// call: evicted from the verify cache here and on every replica, and an
// access token sent along ({"refresh": ..., "access": ...}) refused until
// it expires. That is logout at the edge: SimpleJWT blacklists only the
// refresh token, and its verify endpoint keeps accepting the access token.
func forgetBlacklisted(m mirror) func(ctx context.Context, req, _ []byte) {
	return func(ctx context.Context, req, _ []byte) {
		ctx = context.WithoutCancel(ctx) // record the logout even if the client hangs up
		for _, raw := range tokensIn(req) {
			m.Revoke(ctx, raw) // verifies raw first: junk is never recorded
		}
	}
}

// tokensIn returns the refresh/access/token fields of a JSON or form body.
func tokensIn(body []byte) []string {
	var out []string
	var m map[string]any
	if err := json.Unmarshal(body, &m); err == nil {
		for _, k := range []string{"refresh", "access", "token"} {
			if s, ok := m[k].(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	if v, err := url.ParseQuery(strings.TrimSpace(string(body))); err == nil {
		for _, k := range []string{"refresh", "access", "token"} {
			if s := v.Get(k); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// writeRemote sends the auth service's answer unchanged: status, headers
// (less hop-by-hop ones) and body.
func writeRemote(w http.ResponseWriter, resp remote.Response) {
	for k, vs := range resp.Header {
		if !hopHeaders[k] {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}
