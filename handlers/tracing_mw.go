package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/tracing"
	"jwtgate/models"
)

// traceRequests starts the request's server span (tracing on only). A
// traceparent / tracestate is believed from a trusted proxy only; anyone
// else's is dropped and the request starts a new trace. The span is named
// after the route (or the gateway endpoint), never the raw path, and
// carries the user id, never a token.
func traceRequests(tr *tracing.Tracing, trusted trustedProxies) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		ctx := r.Context()
		if trusted.fromTrusted(r) {
			ctx = tr.Extract(ctx, r.Header)
		} else {
			for k := range r.Header {
				if f := normalizeHeaderName(k); f == "traceparent" || f == "tracestate" {
					delete(r.Header, k)
				}
			}
		}
		ctx, span := tr.Tracer().Start(ctx, "request", trace.WithSpanKind(trace.SpanKindServer))
		c.Request = r.WithContext(ctx)
		c.Next()
		route := routeName(c)
		if route == "" {
			route = c.FullPath()
		}
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		span.SetName(route)
		span.SetAttributes(
			attribute.String("jwtgate.route", route),
			attribute.String("http.request.method", r.Method),
			attribute.Int("http.response.status_code", status),
		)
		if p := principalOf(c); p != nil {
			span.SetAttributes(attribute.String("enduser.id", principalID(p)))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
}

// principalID is the caller's user id as logs and spans show it.
func principalID(p *authn.Principal) string {
	if p.User != nil {
		return p.User.ID
	}
	return p.Token.UserID
}

// tracedAuth puts an "authenticate" span around authentication: the
// verify mode, whether it called home (a cache miss; no call is a cache
// hit or a coalesced wait, or local verification) and the user id.
type tracedAuth struct {
	next   authenticator
	tracer trace.Tracer
	mode   string
}

func (a tracedAuth) Authenticate(ctx context.Context, raw string) (authn.Principal, error) {
	ctx, span := a.tracer.Start(ctx, "authenticate", trace.WithAttributes(attribute.String("jwtgate.verify", a.mode)))
	defer span.End()
	ctx, called := tracing.WithCallMark(ctx)
	p, err := a.next.Authenticate(ctx, raw)
	span.SetAttributes(attribute.Bool("jwtgate.auth.called_home", called.Load()))
	if err != nil {
		span.SetStatus(codes.Error, "refused") // the error's text stays out: it is the log's
		return p, err
	}
	span.SetAttributes(attribute.String("enduser.id", principalID(&p)))
	return p, nil
}

// authServiceSpanName names a call home by the endpoint it calls, from the
// configured paths: never the raw path (the user path carries an id).
func authServiceSpanName(as models.AuthService) func(*http.Request) string {
	exact := map[string]string{
		as.TokenPath: "auth_service token", as.RefreshPath: "auth_service refresh",
		as.VerifyPath: "auth_service verify", as.BlacklistPath: "auth_service blacklist",
	}
	userPrefix, _, _ := strings.Cut(as.UserPath, "{")
	return func(r *http.Request) string {
		for p, name := range exact {
			if p != "" && strings.HasSuffix(r.URL.Path, p) {
				return name
			}
		}
		if userPrefix != "" && strings.Contains(r.URL.Path, userPrefix) {
			return "auth_service user fetch"
		}
		return "auth_service"
	}
}

// spanName returns a fixed span name.
func spanName(name string) func(*http.Request) string {
	return func(*http.Request) string { return name }
}

// withTraceIDs wraps a log handler so every record logged with a traced
// request's context carries trace_id and span_id (tracing on only).
func withTraceIDs(h slog.Handler) slog.Handler { return traceIDHandler{h} }

type traceIDHandler struct{ slog.Handler }

func (h traceIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceIDHandler{h.Handler.WithAttrs(as)}
}

func (h traceIDHandler) WithGroup(name string) slog.Handler {
	return traceIDHandler{h.Handler.WithGroup(name)}
}

// stopTracing exports the buffered spans and stops the provider, within a
// bound; a no-op when tracing is off.
func stopTracing(tr *tracing.Tracing) {
	if tr == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
}

// tracedStore puts spans around the user mirror's writes (tracing on
// only): "user mirror write" for a fetched user, "user mirror set active"
// for a deactivation seen.
type tracedStore struct {
	authn.UserStore
	tracer trace.Tracer
}

func (s tracedStore) UpsertUser(ctx context.Context, u models.User) error {
	ctx, span := s.tracer.Start(ctx, "user mirror write")
	defer span.End()
	err := s.UserStore.UpsertUser(ctx, u)
	if err != nil {
		span.SetStatus(codes.Error, "write failed")
	}
	return err
}

func (s tracedStore) SetActiveByKey(ctx context.Context, k models.UserKey, active bool) error {
	ctx, span := s.tracer.Start(ctx, "user mirror set active")
	defer span.End()
	err := s.UserStore.SetActiveByKey(ctx, k, active)
	if err != nil {
		span.SetStatus(codes.Error, "write failed")
	}
	return err
}
