package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/models"
)

// revoker is what logout-all and the admin API need from authn.
type revoker interface {
	RevokeUser(ctx context.Context, key models.UserKey, reason string) error
	SetUserActive(ctx context.Context, key models.UserKey, active bool, reason string) error
}

// adminStore is the part of the mirror the admin API reads and audits to.
type adminStore interface {
	SearchUsers(ctx context.Context, q string, offset, limit int) ([]models.User, error)
	UserByKey(ctx context.Context, k models.UserKey) (models.User, error)
	RecordAudit(ctx context.Context, e models.AuditEvent) error
}

// Admin API page sizes.
const (
	adminDefaultLimit = 50
	adminMaxLimit     = 500
)

// handleLogoutAll answers POST /auth/token/logout-all/: the caller's
// cutoff becomes now, so every token of theirs issued in an earlier second
// is refused on every replica (the one sent with this request included).
func handleLogoutAll(log *slog.Logger, rv revoker) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := principalOf(c)
		if err := rv.RevokeUser(c.Request.Context(), p.User.Key(), "logout-all"); err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"detail": "Logged out everywhere."})
	}
}

// adminUser is a mirrored user as the admin API shows it.
type adminUser struct {
	ID               string     `json:"id"`
	Username         string     `json:"username"`
	Email            string     `json:"email"`
	IsActive         bool       `json:"is_active"`
	IsStaff          bool       `json:"is_staff"`
	IsSuperuser      bool       `json:"is_superuser"`
	FetchedAt        time.Time  `json:"fetched_at"`
	TokensValidAfter *time.Time `json:"tokens_valid_after"`
}

func adminView(u models.User) adminUser {
	return adminUser{ID: u.ID, Username: u.Username, Email: u.Email, IsActive: u.IsActive, IsStaff: u.IsStaff,
		IsSuperuser: u.IsSuperuser, FetchedAt: u.FetchedAt.UTC(), TokensValidAfter: u.TokensValidAfter}
}

// admin serves /admin/. Every route sits behind requireAuth with the
// admin.allow rule: the one decision authenticates the caller and
// evaluates the rule (403 when it does not hold).
type admin struct {
	log   *slog.Logger
	store adminStore
	rv    revoker
}

// list answers GET /admin/users/?q=&limit=&offset=.
func (a admin) list(c *gin.Context) {
	limit, offset := adminDefaultLimit, 0
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > adminMaxLimit {
			newAPIError(http.StatusBadRequest, "bad_request", "limit must be a whole number from 1 to 500.").abort(c)
			return
		}
		limit = n
	}
	if v := c.Query("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			newAPIError(http.StatusBadRequest, "bad_request", "offset must be a whole number, 0 or more.").abort(c)
			return
		}
		offset = n
	}
	q := c.Query("q")
	us, err := a.store.SearchUsers(c.Request.Context(), q, offset, limit+1)
	if err != nil {
		fail(c, a.log, err)
		return
	}
	var next *string
	if len(us) > limit {
		us = us[:limit]
		v := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset + limit)}}
		if q != "" {
			v.Set("q", q)
		}
		s := "/admin/users/?" + v.Encode()
		next = &s
	}
	results := make([]adminUser, 0, len(us))
	for _, u := range us {
		results = append(results, adminView(u))
	}
	c.JSON(http.StatusOK, gin.H{"results": results, "next": next})
}

// show answers GET /admin/users/{id}/.
func (a admin) show(c *gin.Context) {
	u, err := a.store.UserByKey(c.Request.Context(), models.UserKey{ID: c.Param("id")})
	if err != nil {
		fail(c, a.log, err) // ErrNotFound: 404
		return
	}
	c.JSON(http.StatusOK, adminView(u))
}

// act answers POST /admin/users/{id}/revoke|deactivate|activate.
func (a admin) act(c *gin.Context) {
	ctx := c.Request.Context()
	action := c.Param("action")
	target := models.UserKey{ID: c.Param("id")}
	actor := principalOf(c).User.Key().String()
	reason := "admin " + actor
	var err error
	var detail string
	switch action {
	case "revoke":
		err, detail = a.rv.RevokeUser(ctx, target, reason), "Tokens revoked."
	case "deactivate":
		err, detail = a.rv.SetUserActive(ctx, target, false, reason), "User deactivated."
	case "activate":
		err, detail = a.rv.SetUserActive(ctx, target, true, reason), "User activated."
	default:
		errNotFound.abort(c)
		return
	}
	if err != nil {
		fail(c, a.log, err) // ErrNotFound (not mirrored): 404
		return
	}
	a.log.InfoContext(ctx, "audit", "actor_id", actor, "action", action, "target", target.String(), "request_id", models.RequestID(ctx))
	ev := models.AuditEvent{Actor: actor, Action: action, Target: target.String(), RequestID: models.RequestID(ctx)}
	if err := a.store.RecordAudit(context.WithoutCancel(ctx), ev); err != nil {
		a.log.ErrorContext(ctx, "could not write the audit event", "err", err)
	}
	c.JSON(http.StatusOK, gin.H{"detail": detail})
}

// mountAdmin registers /admin/ when admin.allow is set; otherwise /admin/
// is left to the route table (404 unless a route covers it).
func mountAdmin(r *gin.Engine, dc *decider, rule *models.Rule, a admin) {
	if rule == nil {
		return
	}
	rt := builtinRoute("admin")
	rt.Rule, rt.rule = rule, rule
	g := r.Group("/admin/users", requireAuth(dc, rt))
	g.GET("/", a.list)
	g.GET("/:id/", a.show)
	g.POST("/:id/:action", a.act)
	g.POST("/:id/:action/", a.act)
}
