package models

import "context"

type requestIDKey struct{}

// requestIDCtx is a context carrying a request id: one allocation per
// request, where context.WithValue takes two (the context and the string
// copied into an interface). Value answers with a pointer to the id,
// which needs no allocation either.
type requestIDCtx struct {
	context.Context
	id string
}

// Value returns a *string of the id for requestIDKey, else the parent's
// value.
func (c *requestIDCtx) Value(key any) any {
	if _, ok := key.(requestIDKey); ok {
		return &c.id
	}
	return c.Context.Value(key)
}

// WithRequestID returns ctx carrying a request's id: what its log records
// carry and what its calls home send as X-Request-Id. The HTTP layer sets
// it once per request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return &requestIDCtx{Context: ctx, id: id}
}

// RequestID returns the request id WithRequestID put in ctx, or "".
func RequestID(ctx context.Context) string {
	if p, ok := ctx.Value(requestIDKey{}).(*string); ok {
		return *p
	}
	return ""
}
