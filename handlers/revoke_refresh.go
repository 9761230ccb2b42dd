package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// refreshChecker is what the refresh guard needs from authn.
type refreshChecker interface {
	CheckRefresh(ctx context.Context, raw string) error
}

// refuseRevokedRefresh answers 401 token_not_valid ("Token has been
// revoked") to a refresh call whose refresh token was issued before its
// user's cutoff (logout-all, jwtgate users revoke, the admin API), without
// calling the auth service; other calls go on to the relay unchanged.
func refuseRevokedRefresh(log *slog.Logger, rc refreshChecker, maxBody int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		body, ok := readSmallBody(c, log, maxBody)
		if !ok {
			return
		}
		raws, readable := refreshTokensIn(c.ContentType(), body)
		if !readable {
			errRefreshBody.abort(c)
			return
		}
		for _, raw := range raws {
			if err := rc.CheckRefresh(c.Request.Context(), raw); err != nil {
				fail(c, log, err)
				return
			}
		}
		c.Next()
	}
}

// errRefreshBody refuses a refresh body the gateway cannot read the way
// the auth service would: one it could not check against the cutoff.
var errRefreshBody = newAPIError(http.StatusBadRequest, "bad_request",
	"Send the refresh token as a JSON object or a urlencoded form.")

// refreshTokensIn returns the refresh tokens of a refresh call's body, and
// whether the body is one the gateway reads as Django REST framework
// does: JSON that Go decodes (Python also takes NaN and Infinity, which Go
// refuses: refused here, so no token hides behind them) with the last of
// repeated names, as both decode it; or a urlencoded form, every refresh
// value (Django reads the last, Go's Get the first). Multipart and other
// types, which DRF may parse but the gateway does not, are refused.
func refreshTokensIn(contentType string, body []byte) ([]string, bool) {
	switch contentType {
	case "application/json":
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, false
		}
		if s, _ := m["refresh"].(string); s != "" {
			return []string{s}, true
		}
		return nil, true
	case "application/x-www-form-urlencoded":
		v, _ := url.ParseQuery(strings.TrimSpace(string(body))) // pairs after a bad one still count
		return v["refresh"], true
	}
	return nil, false
}
