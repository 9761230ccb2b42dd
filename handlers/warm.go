package handlers

import (
	"context"
	"encoding/json"
)

// warmer caches a token the auth service has just issued as verified.
type warmer interface {
	Warm(ctx context.Context, raw string) bool
}

// warmIssued caches the access token of a successful login or refresh
// answer as verified (authn.Authenticator.Warm): it came from the auth
// service through the gateway, so its first API call needs no call home.
// An answer without an access token (or not JSON) warms nothing.
func warmIssued(w warmer) func(ctx context.Context, req, resp []byte) {
	return func(ctx context.Context, _, resp []byte) {
		var pair struct {
			Access string `json:"access"`
		}
		if err := json.Unmarshal(resp, &pair); err != nil || pair.Access == "" {
			return
		}
		w.Warm(ctx, pair.Access)
	}
}

// both runs first, then second (hooks run after a token call's 200).
func both(first, second func(ctx context.Context, req, resp []byte)) func(ctx context.Context, req, resp []byte) {
	return func(ctx context.Context, req, resp []byte) {
		first(ctx, req, resp)
		second(ctx, req, resp)
	}
}
