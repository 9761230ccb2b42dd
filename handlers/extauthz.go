package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcpeer "google.golang.org/grpc/peer"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/tracing"
)

// extAuthzService is the gRPC ext_authz entry point
// (envoy.service.auth.v3.Authorization/Check): Envoy describes the
// request it is about to forward, the decision decides it exactly as for
// /auth/check, and the answer is OK with the identity headers to set and
// the client's own identity (and other gateway-owned) headers to remove,
// or DENIED with our status and JSON body.
type extAuthzService struct {
	authv3.UnimplementedAuthorizationServer
	d   func() *decider // the current decision (a reload swaps it)
	log *slog.Logger
	tr  *tracing.Tracing // nil: traces off
}

// newExtAuthzServer builds the gRPC server of ext_authz.grpc_listen: the
// Authorization service and the standard health service (serving for ""
// and for the Authorization service).
func newExtAuthzServer(d func() *decider, log *slog.Logger, tr *tracing.Tracing) *grpc.Server {
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, &extAuthzService{d: d, log: log, tr: tr})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	return srv
}

// Check decides the request Envoy describes. Only a trusted proxy may ask
// (as for /auth/check); its CheckRequest's source address is then the
// client's.
func (s *extAuthzService) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, _ error) {
	d := s.d()
	pa := grpcPeer(ctx)
	if !d.trusted.contains(pa) {
		return extAuthzDenied(errCheckUntrusted, nil), nil
	}
	hr := req.GetAttributes().GetRequest().GetHttp()
	method := hr.GetMethod()
	if !fwdMethodOK(method) {
		return extAuthzDenied(newAPIError(http.StatusForbidden, codePermissionDenied,
			"The request's method must be an HTTP method (a token such as GET)."), nil), nil
	}
	p, apiErr := fwdPath(fwdTarget{uri: hr.GetPath(), header: "The request's path"})
	if apiErr != nil {
		return extAuthzDenied(apiErr, nil), nil
	}
	h, names := extAuthzHeaders(hr)
	client := extAuthzClient(req, pa)
	ctx = context.WithValue(ctx, clientCtxKey{}, clientKey(client))
	span := trace.SpanFromContext(ctx) // a no-op span when traces are off
	if s.tr != nil {
		ctx, span = s.tr.Tracer().Start(s.tr.Extract(ctx, h), "ext_authz check", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		defer func() { extAuthzSpanEnd(span, resp) }()
	}
	dec, err := d.decide(ctx, decisionInput{
		Entry: entryCheck, Method: method, Path: p, Header: h, Trusted: true,
		Client: fixedClient(client),
	})
	if s.tr != nil {
		extAuthzSpanDecision(span, dec)
	}
	if err != nil {
		return s.refuse(ctx, err), nil
	}
	return extAuthzOK(dec, h, names), nil
}

// refuse turns the decision's error into a DENIED answer: forward-auth's
// 403s for refusals the proxy answers 400, 404 or 405, else the proxy's
// own answer (401, 403, 429, 503...).
func (s *extAuthzService) refuse(ctx context.Context, err error) *authv3.CheckResponse {
	if apiErr := checkError(err); apiErr != nil {
		return extAuthzDenied(apiErr, nil)
	}
	var extra []*corev3.HeaderValueOption
	var throttled *authn.ThrottledError
	if errors.As(err, &throttled) {
		secs := retryAfterSeconds(throttled.RetryAfter)
		extra = append(extra, extAuthzHeader("Retry-After", strconv.Itoa(secs)))
		var rl *rateLimitError
		if errors.As(err, &rl) {
			for k, v := range rl.headers() {
				extra = append(extra, extAuthzHeader(k, v[0]))
			}
		}
		return extAuthzDenied(throttledError(secs), extra)
	}
	return extAuthzDenied(errorFor(ctx, s.log, err), extra)
}

// grpcPeer returns the address of the gRPC peer; the zero Addr when it
// cannot be read.
func grpcPeer(ctx context.Context) netip.Addr {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// extAuthzClient is the client's address: the CheckRequest's source (the
// downstream Envoy saw), believed because the peer is trusted; the peer's
// own address when the source is missing.
func extAuthzClient(req *authv3.CheckRequest, pa netip.Addr) string {
	if sa := req.GetAttributes().GetSource().GetAddress().GetSocketAddress(); sa != nil {
		if a, err := netip.ParseAddr(sa.GetAddress()); err == nil {
			return a.Unmap().String()
		}
	}
	return pa.String()
}

// extAuthzHeaders turns the described request's headers into an
// http.Header as Go's server would have stored them, and returns each
// name as Envoy spelled it (lower case) keyed by its canonical form.
// Pseudo-headers (:path, :authority...) are left out. The raw header list
// (encode_raw_headers) keeps duplicates apart; the headers map has them
// joined by commas.
func extAuthzHeaders(hr *authv3.AttributeContext_HttpRequest) (http.Header, map[string][]string) {
	h := http.Header{}
	names := map[string][]string{}
	add := func(k, v string) {
		if k == "" || k[0] == ':' {
			return
		}
		canon := http.CanonicalHeaderKey(k)
		h[canon] = append(h[canon], v)
		if !slices.Contains(names[canon], k) {
			names[canon] = append(names[canon], k)
		}
	}
	if hm := hr.GetHeaderMap(); len(hm.GetHeaders()) > 0 {
		for _, hv := range hm.GetHeaders() {
			v := hv.GetValue()
			if v == "" {
				v = string(hv.GetRawValue())
			}
			add(strings.ToLower(hv.GetKey()), v)
		}
		return h, names
	}
	for k, v := range hr.GetHeaders() {
		add(strings.ToLower(k), v)
	}
	return h, names
}

// extAuthzOK is the OK answer: the identity headers to set (overwriting a
// client's), and to remove every header the decision took out of the
// request (a client's identity headers in any spelling, aliases of the
// gateway's own headers, a token the route does not forward), so the
// upstream sees exactly what the rule saw.
func extAuthzOK(dec decision, cleaned http.Header, names map[string][]string) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	for _, k := range sortedKeys(dec.Identity) {
		for _, v := range dec.Identity[k] {
			ok.Headers = append(ok.Headers, extAuthzHeader(k, v))
		}
	}
	removed := map[string]bool{}
	for _, k := range dec.Remove {
		removed[http.CanonicalHeaderKey(k)] = true
	}
	for canon, spellings := range names {
		_, set := dec.Identity[canon]
		if set && !removed[canon] {
			continue // overwritten by our own value
		}
		if _, kept := cleaned[canon]; kept && !removed[canon] {
			continue
		}
		ok.HeadersToRemove = append(ok.HeadersToRemove, spellings...)
	}
	slices.Sort(ok.HeadersToRemove)
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// extAuthzDenied is the DENIED answer Envoy sends the client: our status,
// JSON body and headers (WWW-Authenticate with a 401).
func extAuthzDenied(e *apiError, extra []*corev3.HeaderValueOption) *authv3.CheckResponse {
	hdrs := []*corev3.HeaderValueOption{extAuthzHeader("Content-Type", "application/json")}
	if e.status == http.StatusUnauthorized {
		hdrs = append(hdrs, extAuthzHeader("Www-Authenticate", authChallenge))
	}
	hdrs = append(hdrs, extra...)
	code := codes.PermissionDenied
	switch {
	case e.status == http.StatusUnauthorized:
		code = codes.Unauthenticated
	case e.status == http.StatusTooManyRequests:
		code = codes.ResourceExhausted
	case e.status >= 500:
		code = codes.Unavailable
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: e.detail},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(e.status)},
			Headers: hdrs,
			Body:    string(e.body),
		}},
	}
}

// extAuthzHeader is a header to set, replacing any value of that name.
func extAuthzHeader(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// sortedKeys returns h's keys in order, for a stable answer.
func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// retryAfterSeconds is a wait as Retry-After's whole seconds, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

// throttledError is the 429 throttled answer's body, as refuseThrottled
// writes it.
func throttledError(secs int) *apiError {
	return newAPIError(http.StatusTooManyRequests, codeThrottled,
		fmt.Sprintf("Request was throttled. Expected available in %d seconds.", secs))
}

// extAuthzSpanDecision names the check's span after the route and puts
// the user id on it (never a token).
func extAuthzSpanDecision(span trace.Span, dec decision) {
	if dec.Route != nil {
		span.SetName("ext_authz " + dec.Route.Name)
		span.SetAttributes(attribute.String("jwtgate.route", dec.Route.Name))
	}
	if dec.Principal != nil {
		span.SetAttributes(attribute.String("enduser.id", principalID(dec.Principal)))
	}
}

// extAuthzSpanEnd records the HTTP status Envoy will send (200 when
// allowed) on the check's span.
func extAuthzSpanEnd(span trace.Span, resp *authv3.CheckResponse) {
	status := http.StatusOK
	if d := resp.GetDeniedResponse(); d != nil {
		status = int(d.GetStatus().GetCode())
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
}
