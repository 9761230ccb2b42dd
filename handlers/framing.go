package handlers

import "github.com/gin-gonic/gin"

// closeAfterChunked answers every request that arrived with a chunked body
// with Connection: close. net/http accepts Transfer-Encoding together with
// Content-Length by dropping Content-Length (RFC 9112 §6.3) but keeps the
// connection open, where the RFC says the server MUST close it: a front
// proxy that went by the Content-Length would then be out of step with us,
// and the bytes after the chunked body would be served as a request of
// their own (request smuggling). A handler cannot see whether there was a
// Content-Length, so every chunked request closes its connection; the cost
// is one reconnect after a chunked upload.
func closeAfterChunked(c *gin.Context) {
	if len(c.Request.TransferEncoding) > 0 {
		c.Header("Connection", "close")
	}
	c.Next()
}
