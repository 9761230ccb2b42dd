package tests

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"jwtgate/tests/fakeauth"
)

// tracingReceiver is an OTLP/HTTP trace receiver: it decodes the
// protobuf export requests the gateway posts to /v1/traces.
type tracingReceiver struct {
	URL   string
	mu    sync.Mutex
	spans []*tracepb.Span
}

func tracingStartReceiver(t *testing.T) *tracingReceiver {
	t.Helper()
	rc := &tracingReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want protobuf on /v1/traces", http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		req := &coltracepb.ExportTraceServiceRequest{}
		if err == nil {
			err = proto.Unmarshal(b, req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				rc.spans = append(rc.spans, ss.GetSpans()...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

// trace returns the spans of one trace id (hex).
func (rc *tracingReceiver) trace(id string) []*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range rc.spans {
		if tracingHex(s.GetTraceId()) == id {
			out = append(out, s)
		}
	}
	return out
}

func tracingHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func tracingAttr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return tracingValue(kv.GetValue())
		}
	}
	return ""
}

func tracingValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	}
	return v.String()
}

// tracingRecorder is an HTTP server that records the traceparent of
// every request it gets, then hands the request on.
type tracingRecorder struct {
	mu     sync.Mutex
	parent []string
}

func (tr *tracingRecorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.parent = append(tr.parent, r.Header.Get("Traceparent"))
		tr.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// traceIDs returns the trace ids of the traceparents received.
func (tr *tracingRecorder) traceIDs() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, p := range tr.parent {
		parts := strings.Split(p, "-")
		if len(parts) == 4 {
			out = append(out, parts[1])
		} else {
			out = append(out, "")
		}
	}
	return out
}

const tracingConfig = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.1"]
routes:
  - path: "/api/billing/"
    name: billing
    upstream: "%UPSTREAM%"
`

// A cold request is one trace: the request span named after the route,
// authenticate under it with the verify call and the user fetch, and the
// upstream call; the auth service and the upstream get the same trace id
// in traceparent; the access log carries trace_id and span_id. A
// client's traceparent starts nothing; a trusted proxy's is continued.
func TestSecTracingColdRequest(t *testing.T) {
	recv := tracingStartReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")

	fa := fakeauth.Start(t, fakeauth.Options{})
	people := addEdgePeople(t, fa)
	faURL, _ := url.Parse(fa.URL())
	authSeen, upSeen := &tracingRecorder{}, &tracingRecorder{}
	authFront := httptest.NewServer(authSeen.wrap(httputil.NewSingleHostReverseProxy(faURL)))
	t.Cleanup(authFront.Close)
	up := httptest.NewServer(upSeen.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })))
	t.Cleanup(up.Close)
	gw := startGateway(t, tracingConfig, authFront.URL, up.URL, nil)

	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const clientSpan = "00f067aa0ba902b7"
	tp := map[string]string{"traceparent": "00-" + clientTrace + "-" + clientSpan + "-01"}
	// From a stranger: its traceparent is not believed.
	r := do(t, clientFrom(t, "127.0.0.2"), "GET", gw.URL+"/api/billing/invoices/42", people.alice, tp)
	if r.Status != 200 {
		t.Fatalf("cold request: %d %s", r.Status, r.Body)
	}
	// From the trusted proxy: continued.
	r = do(t, clientFrom(t, "127.0.0.1"), "GET", gw.URL+"/api/billing/invoices/43", people.bob, tp)
	if r.Status != 200 {
		t.Fatalf("proxied request: %d %s", r.Status, r.Body)
	}
	if err := gw.GW.Close(); err != nil { // flushes the spans
		t.Fatal(err)
	}

	ups := upSeen.traceIDs()
	if len(ups) != 2 || ups[0] == "" || ups[0] == clientTrace {
		t.Fatalf("upstream traceparents %v: the stranger's trace must be a new one", ups)
	}
	if ups[1] != clientTrace {
		t.Fatalf("the trusted proxy's trace not continued upstream: %v", ups)
	}
	cold := ups[0]
	spans := recv.trace(cold)
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		byName[s.GetName()] = s
		for _, kv := range s.GetAttributes() {
			if strings.Contains(tracingValue(kv.GetValue()), people.alice) {
				t.Errorf("span %s attribute %s carries the token", s.GetName(), kv.GetKey())
			}
		}
		if strings.Contains(s.GetName(), "42") {
			t.Errorf("span name %q carries the raw path", s.GetName())
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.GetName())
	}
	req, authn, verify, fetch, upstream := byName["billing"], byName["authenticate"], byName["auth_service verify"], byName["auth_service user fetch"], byName["upstream"]
	if req == nil || authn == nil || verify == nil || fetch == nil || upstream == nil {
		t.Fatalf("spans of the cold request: %v", names)
	}
	parent := func(child, of *tracepb.Span) {
		t.Helper()
		if tracingHex(child.GetParentSpanId()) != tracingHex(of.GetSpanId()) {
			t.Errorf("%s's parent is not %s", child.GetName(), of.GetName())
		}
	}
	if len(req.GetParentSpanId()) != 0 {
		t.Errorf("the stranger's request span has a parent %x", req.GetParentSpanId())
	}
	if req.GetKind() != tracepb.Span_SPAN_KIND_SERVER || upstream.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("kinds: request %v, upstream %v", req.GetKind(), upstream.GetKind())
	}
	parent(authn, req)
	parent(verify, authn)
	parent(fetch, authn)
	parent(upstream, req)
	if w := byName["user mirror write"]; w == nil {
		t.Errorf("no user mirror write span: %v", names)
	} else {
		parent(w, authn)
	}
	if got := tracingAttr(req, "enduser.id"); got != people.aliceID {
		t.Errorf("request span enduser.id %q, want %q", got, people.aliceID)
	}
	if got := tracingAttr(authn, "jwtgate.auth.called_home"); got != "true" {
		t.Errorf("cold authenticate called_home %q", got)
	}
	authIDs := authSeen.traceIDs()
	seen := false
	for _, id := range authIDs {
		seen = seen || id == cold
	}
	if !seen {
		t.Errorf("the auth service never saw trace %s: %v", cold, authIDs)
	}
	// The trusted proxy's trace: the request span's parent is its span.
	var proxied *tracepb.Span
	for _, s := range recv.trace(clientTrace) {
		if s.GetName() == "billing" {
			proxied = s
		}
	}
	if proxied == nil || tracingHex(proxied.GetParentSpanId()) != clientSpan {
		t.Fatalf("continued trace: %v", proxied)
	}
	logs := gw.Logs.String()
	if !strings.Contains(logs, "trace_id="+cold) || !strings.Contains(logs, "span_id="+tracingHex(req.GetSpanId())) {
		t.Errorf("access log lacks trace_id/span_id:\n%s", logs)
	}
}

// tracing.enabled: false wins over the environment: nothing is exported
// and a client's traceparent reaches the upstream untouched, as before.
func TestSecTracingOff(t *testing.T) {
	recv := tracingStartReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	fa := fakeauth.Start(t, fakeauth.Options{})
	people := addEdgePeople(t, fa)
	upSeen := &tracingRecorder{}
	up := httptest.NewServer(upSeen.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })))
	t.Cleanup(up.Close)
	gw := startGateway(t, tracingConfig+"tracing: {enabled: false}\n", fa.URL(), up.URL, nil)
	r := do(t, nil, "GET", gw.URL+"/api/billing/x", people.alice, nil)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	_ = gw.GW.Close()
	recv.mu.Lock()
	n := len(recv.spans)
	recv.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d spans exported with tracing.enabled: false", n)
	}
	if strings.Contains(gw.Logs.String(), "trace_id=") {
		t.Fatal("trace_id logged with tracing off")
	}
}

// A gRPC ext_authz Check from the trusted Envoy continues the trace its
// traceparent names: the check span (named after the route) is a child of
// Envoy's span, and the calls home it makes carry the same trace id.
func TestSecTracingExtAuthz(t *testing.T) {
	recv := tracingStartReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	fa := fakeauth.Start(t, fakeauth.Options{})
	people := addEdgePeople(t, fa)
	faURL, _ := url.Parse(fa.URL())
	authSeen := &tracingRecorder{}
	authFront := httptest.NewServer(authSeen.wrap(httputil.NewSingleHostReverseProxy(faURL)))
	t.Cleanup(authFront.Close)
	gw := startGateway(t, tracingConfig+"ext_authz: {grpc_listen: \"127.0.0.1:0\"}\n", authFront.URL, "http://127.0.0.1:9", nil)
	ln := extauthzListen(t)
	go func() { _ = gw.GW.ExtAuthz.Serve(ln) }()
	t.Cleanup(gw.GW.ExtAuthz.Stop)
	cc := extauthzConn(t, ln.Addr().String(), "127.0.0.1")

	const envoyTrace, envoySpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	resp := extauthzCheck(t, cc, extauthzRequest("GET", "/api/billing/7", "203.0.113.9", map[string]string{
		"authorization": "Bearer " + people.carol, "traceparent": "00-" + envoyTrace + "-" + envoySpan + "-01",
	}))
	if resp.GetOkResponse() == nil {
		t.Fatalf("check: %s", resp.GetDeniedResponse().GetBody())
	}
	if err := gw.GW.Close(); err != nil {
		t.Fatal(err)
	}
	var check *tracepb.Span
	for _, s := range recv.trace(envoyTrace) {
		if s.GetName() == "ext_authz billing" {
			check = s
		}
	}
	if check == nil || tracingHex(check.GetParentSpanId()) != envoySpan || tracingAttr(check, "enduser.id") != people.carolID {
		t.Fatalf("check span %v", check)
	}
	ids := authSeen.traceIDs() // the readiness probe's calls have their own traces
	if !slices.Contains(ids, envoyTrace) {
		t.Fatalf("auth service traceparents %v, want trace %s among them", ids, envoyTrace)
	}
}
