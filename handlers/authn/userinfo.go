package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"jwtgate/models"
)

// Userinfo fetches users from an OpenID provider's userinfo endpoint with
// the caller's token (users.source: userinfo) and maps the answer with the
// users section's mapping. It is a UserFetcher: the mirror, its refresh
// and the outage handling are the auth service's.
type Userinfo struct {
	endpoint atomic.Pointer[string]
	hc       *http.Client
	mapping  *models.UserMapping
}

// NewUserinfo builds the fetcher for a userinfo endpoint.
func NewUserinfo(endpoint string, hc *http.Client, mapping *models.UserMapping) *Userinfo {
	u := &Userinfo{hc: hc, mapping: mapping}
	u.endpoint.Store(&endpoint)
	return u
}

// SetEndpoint moves the fetcher to another userinfo endpoint (the
// provider's discovery document named a new one); fetches in flight
// finish on the old one.
func (u *Userinfo) SetEndpoint(endpoint string) { u.endpoint.Store(&endpoint) }

// Endpoint is the userinfo endpoint users are fetched from.
func (u *Userinfo) Endpoint() string { return *u.endpoint.Load() }

// maxUserinfoBytes bounds a userinfo answer.
const maxUserinfoBytes = 1 << 20

// FetchUser implements UserFetcher. 401 from the provider is about the
// token (models.ErrTokenInvalid), 403 about the caller's rights; no answer
// or a 5xx is models.ErrAuthUnavailable.
func (u *Userinfo) FetchUser(ctx context.Context, token, id string, now time.Time) (models.User, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Endpoint(), nil)
	if err != nil {
		return models.User{}, fmt.Errorf("userinfo: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := u.hc.Do(req)
	if err != nil {
		return models.User{}, fmt.Errorf("userinfo: %w: %w", models.ErrAuthUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return models.User{}, &models.TokenError{Reason: models.ReasonRejected, Detail: "the provider's userinfo endpoint refused the token"}
	case resp.StatusCode == http.StatusForbidden:
		return models.User{}, fmt.Errorf("userinfo: %w", models.ErrPermissionDenied)
	case resp.StatusCode != http.StatusOK:
		return models.User{}, fmt.Errorf("userinfo: status %d: %w", resp.StatusCode, models.ErrAuthUnavailable)
	}
	var claims map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxUserinfoBytes)).Decode(&claims); err != nil {
		return models.User{}, fmt.Errorf("userinfo: not a JSON object: %w: %w", models.ErrAuthUnavailable, err)
	}
	user, err := u.mapping.User("", claims, now)
	if err != nil {
		return models.User{}, fmt.Errorf("userinfo for %q: %w", id, err)
	}
	return user, nil
}
