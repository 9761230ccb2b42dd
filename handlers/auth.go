package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// authenticator is what the HTTP layer needs from authn.
type authenticator interface {
	Authenticate(ctx context.Context, raw string) (authn.Principal, error)
}

// credentials reads the token from the configured header.
type credentials struct {
	header string
	types  []string // empty: the header holds the bare token
}

// extract returns the raw token. present is false when the request carries
// no credential for us (no header, or another scheme such as Basic);
// err is set when it carries a malformed one.
func (cr credentials) extract(h http.Header) (raw string, present bool, err error) {
	v := strings.TrimSpace(h.Get(cr.header))
	if v == "" {
		return "", false, nil
	}
	if len(v) > models.MaxTokenBytes+64 {
		return "", true, &models.TokenError{Reason: models.ReasonTooLarge, Detail: "credential header too long"}
	}
	if len(cr.types) == 0 {
		return v, true, nil
	}
	scheme, rest, _ := strings.Cut(v, " ")
	for _, t := range cr.types {
		if strings.EqualFold(scheme, t) {
			raw = strings.TrimSpace(rest)
			if raw == "" || strings.ContainsAny(raw, " \t") {
				return "", true, &models.TokenError{Reason: models.ReasonMalformed, Detail: "header must contain two space-delimited values"}
			}
			return raw, true, nil
		}
	}
	return "", false, nil // another scheme: not ours
}

const principalKey = "jwtgate.principal"

// requireAuth authenticates the request or aborts with 401/403/503.
func requireAuth(log *slog.Logger, cr credentials, auth authenticator) gin.HandlerFunc {
	return func(c *gin.Context) {
		raw, present, err := cr.extract(c.Request.Header)
		if err == nil && !present {
			err = models.ErrNotAuthenticated
		}
		var p authn.Principal
		if err == nil {
			p, err = auth.Authenticate(c.Request.Context(), raw)
		}
		if err != nil {
			fail(c, log, err)
			return
		}
		c.Set(principalKey, &p)
		c.Next()
	}
}

// rawToken returns the request's token after requireAuth accepted it.
func rawToken(c *gin.Context, cr credentials) string {
	raw, _, _ := cr.extract(c.Request.Header)
	return raw
}

func principalOf(c *gin.Context) *authn.Principal {
	p, _ := c.Get(principalKey)
	pp, _ := p.(*authn.Principal)
	return pp
}
