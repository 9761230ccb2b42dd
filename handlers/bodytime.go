package handlers

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// errBodyTimeout answers a request whose body did not arrive within its
// body timeout (routes[].body_timeout, auth_service.body_timeout). The
// connection is closed after it: the rest of the body may still be coming.
var errBodyTimeout = newAPIError(http.StatusRequestTimeout, codeRequestTimeout, "The request body did not arrive in time.")

// clientBody is a request body on its way from the client. It notes whether
// reading it failed, so a malformed body is answered 400 instead of being
// blamed on the upstream, and, with limit, bounds how long the client may
// take to send it. The transport reads it on its own goroutine, hence the
// atomics; the error handler finds it in the request's reqState
// (ReverseProxy hands it a wrapped body).
type clientBody struct {
	io.ReadCloser
	failed   atomic.Bool
	done     atomic.Bool // read to its end
	rc       *http.ResponseController
	deadline time.Time // zero: no body timeout
}

// limit sets a read deadline on the client's connection, d from now, so a
// body trickled a byte at a time fails the read that waits for it (and with
// it the upstream call) instead of holding the connection and an upstream
// call for minutes. The deadline is lifted at the body's end, so a slow
// upstream answer after a complete body is not cut. d <= 0: no bound.
func (b *clientBody) limit(w http.ResponseWriter, d time.Duration) {
	if d <= 0 {
		return
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(d)
	if err := rc.SetReadDeadline(deadline); err != nil {
		return // a writer without deadlines (a test recorder): unbounded
	}
	b.rc, b.deadline = rc, deadline
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		if b.rc != nil && b.done.CompareAndSwap(false, true) {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case err != nil:
		b.failed.Store(true)
	}
	return n, err
}

// timedOut reports whether the body timeout passed before the body's end.
// It goes by the clock, not by the read error: net/http cancels the
// request's context on the failed read, and the upstream call may report
// that before the read's own error reaches Read.
func (b *clientBody) timedOut() bool {
	return !b.deadline.IsZero() && !b.done.Load() && !time.Now().Before(b.deadline)
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// abortBodyError answers a failed read of a request body: 408 with the
// connection closed when the body timeout passed, else 400 (a malformed
// body, a client gone).
func abortBodyError(c *gin.Context, err error) {
	if isTimeout(err) {
		c.Header("Connection", "close")
		errBodyTimeout.abort(c)
		return
	}
	errMalformed.abort(c)
}

// tokenBodyDeadline applies auth_service.body_timeout to the token
// endpoints (/auth/token/...), whose bodies are small: a login or a
// refresh is a few hundred bytes, not a minute's upload.
func tokenBodyDeadline(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if d > 0 && strings.HasPrefix(c.FullPath(), "/auth/token/") && r.Body != nil && r.Body != http.NoBody {
			b := &clientBody{ReadCloser: r.Body}
			b.limit(c.Writer, d)
			r.Body = b
		}
		c.Next()
	}
}
