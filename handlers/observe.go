package handlers

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/metrics"
	"jwtgate/models"
	"jwtgate/remote"
)

// headerRequestID carries the request id to upstreams, to the auth service
// and back to the client.
const headerRequestID = "X-Request-Id"

// routeName returns the name of the route handleProxy matched, or "".
func routeName(c *gin.Context) string {
	if s := ginState(c); s != nil && s.route != nil {
		return s.route.Name
	}
	return ""
}

// quietPaths are probes and scrapes: logged at debug, not info, so they do
// not drown the access log.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe is the outermost middleware: it settles the request id, then
// after the request writes one access log line and the request metrics.
// The line has the path but never the query string (token endpoints and
// some APIs carry secrets there), and never a header value.
//
// The client's X-Request-Id is kept when it is a short safe token and, if
// trusted_proxies is set, only when it comes through one of them (the id
// then names the trace the proxy started); otherwise one is generated.
func observe(log *slog.Logger, m *metrics.Metrics, trusted trustedProxies) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		r := c.Request
		var id string
		if v := r.Header[headerRequestID]; len(v) > 0 { // Get, without canonicalising the key again
			id = v[0]
		}
		if !validRequestID(id) || (len(trusted) > 0 && !trusted.fromTrusted(r)) {
			id = rand.Text()
		}
		// One value slice for the request (relayed to the auth service and
		// upstreams) and the response: a header's values are replaced or
		// appended to (a new array at len 1), never written in place.
		v := []string{id}
		r.Header[headerRequestID] = v
		c.Writer.Header()[headerRequestID] = v
		// One context node for the request id and the request's own
		// state (reqState), and one copy of the request carrying it.
		ctx, _ := withRequestState(r.Context(), id)
		c.Request = r.WithContext(ctx)

		c.Next()

		d := time.Since(start)
		route := routeName(c)
		if route == "" {
			route = c.FullPath()
		}
		if route == "" {
			route = metrics.Unmatched
		}
		status := c.Writer.Status()
		m.Route(route).Done(r.Method, status, d)

		level := slog.LevelInfo
		if quietPaths[r.URL.Path] {
			level = slog.LevelDebug
		}
		if !log.Enabled(c.Request.Context(), level) {
			return
		}
		var user string
		if p := principalOf(c); p != nil && p.User != nil {
			user = p.User.ID
		}
		log.LogAttrs(c.Request.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", d),
			slog.String("user_id", user),
			slog.String("client", c.ClientIP()),
			slog.Int("bytes", c.Writer.Size()),
		)
	}
}

// validRequestID accepts a client's X-Request-Id only when it is a short
// token of safe characters, so it can go into logs and headers unescaped.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '.', ch == '_', ch == '-':
		default:
			return false
		}
	}
	return true
}

// withRequestID wraps a log handler so every record logged with a
// request's context carries its request_id.
func withRequestID(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := models.RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// instrumented times upstream calls of one route.
type instrumented struct {
	next  http.RoundTripper
	route *metrics.Route
}

func (t instrumented) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.route.Upstream(status, time.Since(start))
	return resp, err
}

// fail answers err as errorFor maps it, with Retry-After when the auth
// service's circuit is open or its bulkhead full: the client learns when to
// come back instead of retrying into a breaker that refuses at once.
func fail(c *gin.Context, log *slog.Logger, err error) {
	if d, ok := remote.RetryAfter(err); ok {
		c.Header("Retry-After", strconv.Itoa(max(int((d+time.Second-1)/time.Second), 1)))
	}
	var rl *rateLimitError
	if errors.As(err, &rl) {
		maps.Copy(c.Writer.Header(), rl.headers())
	}
	var throttled *authn.ThrottledError
	if errors.As(err, &throttled) {
		refuseThrottled(c, throttled.RetryAfter)
		return
	}
	errorFor(c.Request.Context(), log, err).abort(c)
}
