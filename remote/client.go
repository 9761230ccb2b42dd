// Package remote speaks the private auth service's wire format (Django REST
// framework + SimpleJWT): relaying token calls, verifying tokens and
// fetching user records. It knows nothing about the gateway's HTTP layer.
package remote

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"jwtgate/models"
)

// maxResponseBytes bounds what is read from the auth service.
const maxResponseBytes = 1 << 20

// Endpoint names a configured auth service path.
type Endpoint int

// The auth service's endpoints.
const (
	EndpointToken Endpoint = iota
	EndpointRefresh
	EndpointVerify
	EndpointBlacklist
	EndpointUser
	// EndpointPasswordChange is auth_service.password_change_path
	// (POST /auth/password-change/ relays to it).
	EndpointPasswordChange
)

// String names the endpoint for logs and metrics.
func (e Endpoint) String() string {
	return [...]string{"token", "refresh", "verify", "blacklist", "user", "password_change"}[e]
}

// Response is the auth service's answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client calls the auth service over a pooled HTTP client with a timeout
// per call, behind a circuit breaker.
type Client struct {
	base    *url.URL
	paths   [6]string
	http    *http.Client
	timeout time.Duration

	breaker  *gobreaker.CircuitBreaker[Response] // nil: no breaker
	coolDown time.Duration
	openedAt atomic.Int64 // unix nanoseconds the circuit last opened

	obs      Observer
	bulkhead *bulkhead        // auth_service.max_in_flight
	bobs     BulkheadObserver // nil: nobody
}

// Observer is told about calls home and the circuit breaker (for metrics
// and readiness). Its methods must be safe for concurrent use.
type Observer interface {
	// ObserveCall is told about every call home. The outcome is
	// "1xx".."5xx", "error" (no answer) or "circuit_open" (not made).
	ObserveCall(e Endpoint, outcome string, d time.Duration)
	// Circuit is told the breaker's new state: "closed", "half-open" or
	// "open".
	Circuit(state string)
}

// Options are a Client's optional dependencies; the zero value is fine.
type Options struct {
	// HTTPClient makes the calls; nil means a pooled default.
	HTTPClient *http.Client
	// Observer is told about calls and the breaker; nil means nobody.
	Observer Observer
	// Bulkhead is told the calls in flight and each call's wait for a
	// slot (auth_service.max_in_flight); nil means nobody.
	Bulkhead BulkheadObserver
}

type nopObserver struct{}

func (nopObserver) ObserveCall(Endpoint, string, time.Duration) {}
func (nopObserver) Circuit(string)                              {}

// CircuitOpenError is returned, without calling, while the circuit is open
// after repeated failures. It matches models.ErrAuthUnavailable.
type CircuitOpenError struct {
	// RetryAfter is how long until the breaker lets a trial call through.
	RetryAfter time.Duration
}

// Error says why no call was made.
func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("auth service circuit open after repeated failures; retry in %s", e.RetryAfter.Round(time.Second))
}

// Unwrap makes the error match models.ErrAuthUnavailable.
func (e *CircuitOpenError) Unwrap() error { return models.ErrAuthUnavailable }

// errServerError marks a 5xx answer as a failure for the breaker; the
// answer itself still goes back to the caller.
var errServerError = errors.New("auth service answered 5xx")

// errUncounted marks a 5xx answer that is neither a failure nor a success
// for the breaker (a 500 to a client's content): were it a success, a
// client could keep the circuit closed during a real outage.
var errUncounted = errors.New("auth service answered 5xx to client content")

// errCutShort marks a timeout of a call that had much less than
// auth_service.timeout left when it got its slot in the bulkhead: the
// caller's deadline (spent queueing) ended it, not a slow service, so it
// does not count against the circuit breaker.
var errCutShort = errors.New("the caller's deadline left the auth service too little time")

// origin says who chose a call's content, which decides whether a 5xx
// answer to it counts against the circuit breaker.
type origin int

const (
	// clientContent: a relayed body or a client's token. A client can
	// craft one that makes the service fail (a deeply nested JSON body
	// made Django raise RecursionError: 500), so a 500 to it says nothing
	// about the service's health and must not let one client open the
	// circuit for everyone.
	clientContent origin = iota
	// gatewayContent: built by the gateway alone (the readiness probe); a
	// 5xx to it is the service's own failure.
	gatewayContent
)

// breakerCounts says whether a call's outcome counts against the circuit
// breaker: no answer (refused connection, timeout; not a caller that went
// away), 502, 503 and 504 whatever the call, and any other 5xx only to a
// call whose content the gateway controls.
func breakerCounts(status int, err error, o origin) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled)
	}
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return status >= 500 && o == gatewayContent
}

// NewTransport returns a pooled transport for calls to one host: the
// default keeps only 2 idle connections per host, which under load means a
// new TCP connection per call.
func NewTransport(timeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = timeout
	t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	return t
}

// New builds a client for the configured auth service.
func New(cfg models.AuthService, opt Options) (*Client, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("auth_service.url: %w", err)
	}
	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: NewTransport(cfg.Timeout)}
	}
	obs := opt.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	c := &Client{
		base:     base,
		paths:    [6]string{cfg.TokenPath, cfg.RefreshPath, cfg.VerifyPath, cfg.BlacklistPath, cfg.UserPath, cfg.PasswordChangePath},
		http:     hc,
		timeout:  cfg.Timeout,
		coolDown: cfg.Circuit.CoolDown,
		obs:      obs,
		bulkhead: newBulkhead(cmp.Or(max(cfg.MaxInFlight, 0), models.DefaultMaxInFlight)),
		bobs:     opt.Bulkhead,
	}
	if n := cfg.Circuit.Failures; n > 0 {
		c.breaker = gobreaker.NewCircuitBreaker[Response](gobreaker.Settings{
			Name:        "auth_service",
			MaxRequests: 1, // one trial call when half-open
			Timeout:     cfg.Circuit.CoolDown,
			ReadyToTrip: func(cs gobreaker.Counts) bool { return cs.ConsecutiveFailures >= uint32(n) },
			// A caller that went away says nothing about the auth service.
			// Neither failure nor success: a 500 to a client's content, and a
			// caller that went away (it says nothing about the auth service).
			IsExcluded: func(err error) bool {
				return err != nil && (errors.Is(err, errUncounted) || errors.Is(err, errCutShort) || !breakerCounts(0, err, clientContent))
			},
			OnStateChange: func(_ string, _, to gobreaker.State) {
				if to == gobreaker.StateOpen {
					c.openedAt.Store(time.Now().UnixNano())
				}
				c.obs.Circuit(to.String())
			},
		})
	}
	return c, nil
}

// circuitState returns "closed", "half-open" or "open" ("closed" when the
// breaker is off).
func (c *Client) circuitState() string {
	if c.breaker == nil {
		return gobreaker.StateClosed.String()
	}
	return c.breaker.State().String()
}

// ProbeRequestID is the X-Request-Id of readiness probes, so the auth
// service's logs tell them from real calls.
const ProbeRequestID = "jwtgate-readiness-probe"

// Probe checks that the auth service answers: an empty verify call, which
// SimpleJWT answers 400. Any answer below 500 counts. Probes bypass
// Observe; their failures count against the circuit breaker (the gateway
// chose their content, so a 5xx is the service's own), but an open circuit
// does not stop them: readiness reports what the service does.
func (c *Client) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}, "X-Request-Id": {ProbeRequestID}}
	resp, err := c.probeTrip(ctx, h, []byte(`{"token":""}`))
	if err != nil {
		return fmt.Errorf("auth service %s: %w", c.base.Host, err)
	}
	if resp.Status >= 500 || resp.Status == http.StatusNotFound {
		return fmt.Errorf("auth service %s: verify_path %s answered %d", c.base.Host, c.paths[EndpointVerify], resp.Status)
	}
	return nil
}

// probeTrip makes the probe's call through the breaker, or directly
// while the breaker refuses calls.
func (c *Client) probeTrip(ctx context.Context, h http.Header, body []byte) (Response, error) {
	path := c.paths[EndpointVerify]
	if c.breaker == nil {
		return c.roundTrip(ctx, http.MethodPost, path, h, body)
	}
	resp, err := c.breaker.Execute(c.counted(ctx, http.MethodPost, path, h, body, gatewayContent, false))
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return c.roundTrip(ctx, http.MethodPost, path, h, body)
	case errors.Is(err, errServerError), errors.Is(err, errUncounted):
		return resp, nil
	}
	return resp, err
}

// counted returns a breaker call that makes one round trip and reports
// the outcomes breakerCounts names as failures, other 5xx as excluded, and
// a timeout as excluded when cut says the caller's deadline left the call
// too little time.
func (c *Client) counted(ctx context.Context, method, path string, h http.Header, body []byte, o origin, cut bool) func() (Response, error) {
	return func() (Response, error) {
		r, err := c.roundTrip(ctx, method, path, h, body)
		switch {
		case err != nil && cut && errors.Is(err, context.DeadlineExceeded):
			return r, fmt.Errorf("%w (%w)", err, errCutShort)
		case err != nil:
			return r, err
		case breakerCounts(r.Status, nil, o):
			return r, errServerError
		case r.Status >= 500:
			return r, errUncounted
		}
		return r, nil
	}
}

// CloseIdleConnections closes pooled connections to the auth service that
// carry no request (on shutdown).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Relay posts body to a token endpoint and returns the answer unchanged,
// whatever its status. The error is non-nil (wrapping
// models.ErrAuthUnavailable) only when no answer came.
func (c *Client) Relay(ctx context.Context, e Endpoint, contentType string, body []byte, hdr http.Header) (Response, error) {
	h := http.Header{}
	for k, vs := range hdr {
		h[k] = vs
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return c.do(ctx, e, http.MethodPost, c.paths[e], h, body, clientContent)
}

// Verify asks the auth service whether a token is valid. It returns nil
// for 200, an error matching models.ErrTokenInvalid for a definitive
// refusal (401, or SimpleJWT's 400 "Token is blacklisted"), and one
// matching models.ErrAuthUnavailable for anything else.
func (c *Client) Verify(ctx context.Context, token string) error {
	body, _ := json.Marshal(map[string]string{"token": token})
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	resp, err := c.do(ctx, EndpointVerify, http.MethodPost, c.paths[EndpointVerify], h, body, clientContent)
	if err != nil {
		return err
	}
	switch {
	case resp.Status == http.StatusOK:
		return nil
	case resp.Status == http.StatusUnauthorized, resp.Status == http.StatusBadRequest:
		return &models.TokenError{Reason: models.ReasonRejected, Detail: fmt.Sprintf("auth service answered %d", resp.Status)}
	default:
		return fmt.Errorf("verify: auth service answered %d: %w", resp.Status, models.ErrAuthUnavailable)
	}
}

// UserPath returns the user endpoint's path for id; hasID is false when the
// configured path has no {user_id} (it returns the caller's own record).
func (c *Client) UserPath(id string) (path string, hasID bool) {
	p := c.paths[EndpointUser]
	if !strings.Contains(p, "{user_id}") {
		return p, false
	}
	return strings.ReplaceAll(p, "{user_id}", url.PathEscape(id)), true
}

// GetUser fetches a user record with the caller's token and returns the
// answer unchanged, whatever its status.
func (c *Client) GetUser(ctx context.Context, token, id string, hdr http.Header) (Response, error) {
	path, _ := c.UserPath(id)
	h := http.Header{}
	for k, vs := range hdr {
		h[k] = vs
	}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Accept", "application/json")
	return c.do(ctx, EndpointUser, http.MethodGet, path, h, nil, clientContent)
}

// FetchUser fetches and parses a user record; see ParseUser for how the
// auth service's refusals are classified.
func (c *Client) FetchUser(ctx context.Context, token, id string, now time.Time) (models.User, error) {
	resp, err := c.GetUser(ctx, token, id, nil)
	if err != nil {
		return models.User{}, err
	}
	return ParseUser(resp, now)
}

// SimpleJWT's codes for a 401 from a protected view (JWTAuthentication.
// get_user) that speak about the user rather than the token.
const (
	codeUserInactive = "user_inactive"
	codeUserNotFound = "user_not_found"
)

// ParseUser turns a user endpoint's answer into a User and classifies a
// refusal by what it says:
//   - about the user (matching models.ErrUserRejected): SimpleJWT's 401 with
//     code user_inactive (also matching models.ErrUserInactive) or
//     user_not_found, or a 404;
//   - about the token (a *models.TokenError, matching
//     models.ErrTokenInvalid): any other 401, such as token_not_valid for a
//     token that expired on its way to the auth service;
//   - about the caller's rights (matching models.ErrPermissionDenied): 403;
//   - no usable answer (matching models.ErrAuthUnavailable): anything else.
//
// Only the first kind may change what the mirror says about the user.
func ParseUser(resp Response, now time.Time) (models.User, error) {
	switch resp.Status {
	case http.StatusOK:
		u, err := models.UserFromRecord(resp.Body, now)
		if err != nil {
			return models.User{}, fmt.Errorf("%w: %w", err, models.ErrAuthUnavailable)
		}
		return u, nil
	case http.StatusUnauthorized:
		switch code := errorCode(resp.Body); code {
		case codeUserInactive:
			return models.User{}, fmt.Errorf("user endpoint answered 401 %s: %w: %w", code, models.ErrUserRejected, models.ErrUserInactive)
		case codeUserNotFound:
			return models.User{}, fmt.Errorf("user endpoint answered 401 %s: %w", code, models.ErrUserRejected)
		default:
			return models.User{}, &models.TokenError{Reason: models.ReasonRejected, Detail: "the user endpoint refused the token (401 " + quoteCode(code) + ")"}
		}
	case http.StatusNotFound:
		return models.User{}, fmt.Errorf("user endpoint answered 404: %w", models.ErrUserRejected)
	case http.StatusForbidden:
		return models.User{}, fmt.Errorf("user endpoint answered 403: %w", models.ErrPermissionDenied)
	default:
		return models.User{}, fmt.Errorf("user endpoint answered %d: %w", resp.Status, models.ErrAuthUnavailable)
	}
}

// errorCode returns the "code" of a DRF/SimpleJWT error body, or "".
func errorCode(body []byte) string {
	var e struct {
		Code any `json:"code"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	s, _ := e.Code.(string)
	return s
}

// quoteCode renders an error code for a log line: short and quoted, as it
// comes from the wire.
func quoteCode(code string) string {
	if code == "" {
		return "without code"
	}
	if len(code) > 64 {
		code = code[:64]
	}
	return fmt.Sprintf("%q", code)
}

// outcomes are the Observe outcomes by status class, pre-built so the warm
// path does not format strings.
var outcomes = [...]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

// InFlight returns how many calls home hold a slot in the bulkhead now.
func (c *Client) InFlight() int { return int(c.bulkhead.inFlight.Load()) }

// admit waits for a slot in the bulkhead, for at most the call timeout
// (less if ctx ends first). While the circuit is open it does not wait: the
// breaker refuses the call at once anyway.
func (c *Client) admit(ctx context.Context) (release func(), err error) {
	if c.breaker != nil && c.breaker.State() == gobreaker.StateOpen {
		return func() {}, nil
	}
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	release, waited, err := c.bulkhead.acquireTimed(wctx, c.bobs)
	if err != nil || waited == 0 {
		return release, err
	}
	// A call that queued until its caller's deadline is nearly spent would
	// only time out at the auth service, holding a slot the next waiter
	// could use: refused like a full queue (503, Retry-After). Only after a
	// wait: a caller with a short deadline of its own (Envoy's ext_authz
	// asks with 200ms) is not refused when a slot is free.
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < c.timeout/10 {
		release()
		return nil, &BusyError{Limit: c.bulkhead.limit, Waited: waited, RetryAfter: busyRetryAfter, Cause: errDeadlineSpent}
	}
	return release, nil
}

// cutShort says whether ctx leaves a call under 90% of the call timeout:
// its caller's deadline (authn bounds a shared verify call by the same
// timeout) was mostly spent waiting for a slot.
func (c *Client) cutShort(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < c.timeout*9/10
}

// do makes one call home through the bulkhead and the breaker; o says who
// chose its content. The wait for a slot and then the round trip are each
// bounded by the call timeout and by ctx: a caller without a deadline of
// its own does not lose the time it queued. A caller whose deadline was
// mostly spent queueing can time out in the round trip; that timeout is
// the queue's doing and does not count against the circuit breaker.
func (c *Client) do(ctx context.Context, e Endpoint, method, path string, h http.Header, body []byte, o origin) (Response, error) {
	if id := models.RequestID(ctx); id != "" && h.Get("X-Request-Id") == "" {
		h.Set("X-Request-Id", id)
	}
	release, err := c.admit(ctx)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", e, c.base.Host, err)
	}
	defer release()
	cut := c.cutShort(ctx)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	var resp Response
	if c.breaker == nil {
		resp, err = c.roundTrip(ctx, method, path, h, body)
	} else {
		resp, err = c.breaker.Execute(c.counted(ctx, method, path, h, body, o, cut))
		if errors.Is(err, errServerError) || errors.Is(err, errUncounted) {
			err = nil // counted or not, the answer is still the answer
		}
	}
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		c.obs.ObserveCall(e, "circuit_open", time.Since(start))
		return Response{}, fmt.Errorf("%s %s: %w", e, c.base.Host, &CircuitOpenError{RetryAfter: c.retryAfter()})
	}
	outcome := outcomes[0]
	if err == nil && resp.Status >= 100 && resp.Status < 600 {
		outcome = outcomes[resp.Status/100]
	}
	c.obs.ObserveCall(e, outcome, time.Since(start))
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w: %w", e, c.base.Host, err, models.ErrAuthUnavailable)
	}
	return resp, nil
}

// retryAfter is how long until the open circuit lets a trial call through;
// at least a second, as Retry-After counts whole seconds.
func (c *Client) retryAfter() time.Duration {
	left := c.coolDown - time.Since(time.Unix(0, c.openedAt.Load()))
	return max(left, time.Second)
}

func (c *Client) roundTrip(ctx context.Context, method, path string, h http.Header, body []byte) (Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return Response{}, err
	}
	req.Header = h
	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}
