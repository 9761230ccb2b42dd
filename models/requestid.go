package models

import "context"

type requestIDKey struct{}

// WithRequestID returns ctx carrying a request's id: what its log records
// carry and what its calls home send as X-Request-Id. The HTTP layer sets
// it once per request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id WithRequestID put in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
