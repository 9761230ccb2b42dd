package handlers

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// corsAllowMethods are the methods a preflight may ask for.
const corsAllowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// cors answers CORS for allowed_origins on every path (token endpoints
// and routes): a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) is answered by the gateway, never
// forwarded: 204 with the CORS headers for a listed origin, 403
// origin_not_allowed otherwise. Other answers to a listed origin carry
// Access-Control-Allow-Origin (that origin, never "*") with credentials;
// an upstream's own Access-Control-* headers are replaced, so it cannot
// open a route to other origins. Every answer varies by Origin.
func (b *browser) cors() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Request.Header
		origin := h.Get("Origin")
		if c.Request.Method == http.MethodOptions && origin != "" && h.Get("Access-Control-Request-Method") != "" {
			b.preflight(c, origin)
			return
		}
		c.Writer = &corsWriter{ResponseWriter: c.Writer, b: b, origin: origin, single: len(h.Values("Origin")) == 1}
		c.Next()
	}
}

// preflight answers a CORS preflight.
func (b *browser) preflight(c *gin.Context, origin string) {
	w := c.Writer.Header()
	w.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	if len(c.Request.Header.Values("Origin")) != 1 || !b.listed(origin) {
		errOriginNotAllowed.abort(c)
		return
	}
	w.Set("Access-Control-Allow-Origin", origin)
	w.Set("Access-Control-Allow-Credentials", "true")
	w.Set("Access-Control-Allow-Methods", corsAllowMethods)
	if hdrs := requestedHeaders(c.Request.Header); hdrs != "" {
		w.Set("Access-Control-Allow-Headers", hdrs)
	}
	w.Set("Access-Control-Max-Age", "600")
	c.AbortWithStatus(http.StatusNoContent)
}

// requestedHeaders is Access-Control-Request-Headers' list, each a valid
// header name, joined again.
func requestedHeaders(h http.Header) string {
	var out []string
	for _, v := range h.Values("Access-Control-Request-Headers") {
		for el := range strings.SplitSeq(v, ",") {
			if el = strings.TrimSpace(el); isToken(el) {
				out = append(out, el)
			}
		}
	}
	return strings.Join(out, ", ")
}

// isToken reports whether s is an HTTP token (a header name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return s != ""
}

// corsWriter sets the CORS headers of an answer when its header is
// written, over whatever the handler or the upstream put there.
type corsWriter struct {
	gin.ResponseWriter
	b       *browser
	origin  string
	single  bool
	written bool
}

func (w *corsWriter) apply() {
	if w.written {
		return
	}
	w.written = true
	h := w.ResponseWriter.Header()
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	h.Add("Vary", "Origin")
	if w.single && w.b.listed(w.origin) {
		h.Set("Access-Control-Allow-Origin", w.origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// WriteHeader sets the CORS headers, then writes the header.
func (w *corsWriter) WriteHeader(code int) { w.apply(); w.ResponseWriter.WriteHeader(code) }

// WriteHeaderNow sets the CORS headers, then writes the header.
func (w *corsWriter) WriteHeaderNow() { w.apply(); w.ResponseWriter.WriteHeaderNow() }

// Write sets the CORS headers (when the header is not written yet), then writes.
func (w *corsWriter) Write(b []byte) (int, error) { w.apply(); return w.ResponseWriter.Write(b) }

// WriteString sets the CORS headers (when the header is not written yet), then writes.
func (w *corsWriter) WriteString(s string) (int, error) {
	w.apply()
	return w.ResponseWriter.WriteString(s)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines of the body timeouts, flushing, hijacking).
func (w *corsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
