package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/remote"
)

// userGetter is the part of remote.Client the users endpoints need.
type userGetter interface {
	UserPath(id string) (path string, hasID bool)
	GetUser(ctx context.Context, token, id string, hdr http.Header) (remote.Response, error)
}

// handleUser answers GET /auth/users/{id}/ and /auth/users/me/: the record as
// the auth service gives it to the caller's token, refreshing the mirror.
// Another user's id is refused here, with no call home, unless the caller is
// staff; then the auth service decides.
func handleUser(log *slog.Logger, cr credentials, users userGetter, m mirror, now func() time.Time) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := principalOf(c)
		id := c.Param("id")
		if id == "me" {
			id = p.User.ID
		}
		own := id == p.User.ID
		if !own && !p.User.IsStaff {
			errPermission.abort(c)
			return
		}
		if _, hasID := users.UserPath(id); !hasID && !own {
			// The auth service's user_path returns only the caller's record.
			errNotFound.abort(c)
			return
		}
		hdr := http.Header{}
		if v := c.Request.Header.Get("X-Request-Id"); v != "" {
			hdr.Set("X-Request-Id", v)
		}
		resp, err := users.GetUser(c.Request.Context(), rawToken(c, cr), id, hdr)
		if err != nil {
			fail(c, log, err)
			return
		}
		if resp.Status == http.StatusOK {
			if u, err := remote.ParseUser(resp, now()); err == nil && u.ID == id {
				_ = m.Mirror(context.WithoutCancel(c.Request.Context()), u)
			} else if err == nil {
				log.WarnContext(c.Request.Context(), "user endpoint returned another record", "user_id", id, "record_id", u.ID)
			}
		}
		writeRemote(c.Writer, resp)
	}
}
