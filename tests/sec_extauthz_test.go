package tests

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// extauthzEnv is a gateway serving gRPC ext_authz on a loopback port.
type extauthzEnv struct {
	*edgeEnv
	addr string
}

// extauthzStart starts the edge gateway of checkRoutes (127.0.0.1 trusted)
// with ext_authz.grpc_listen and serves its gRPC server on a free port.
func extauthzStart(t *testing.T, extra ...string) *extauthzEnv {
	t.Helper()
	e := startEdge(t, checkRoutes, append([]string{`ext_authz: {grpc_listen: "127.0.0.1:0"}`}, extra...)...)
	srv := e.gw.GW.ExtAuthz
	if srv == nil {
		t.Fatal("ext_authz.grpc_listen set but Gateway.ExtAuthz is nil")
	}
	ln := extauthzListen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return &extauthzEnv{edgeEnv: e, addr: ln.Addr().String()}
}

// extauthzConn dials the gRPC server from a loopback source address, so
// the gateway sees that peer (127.0.0.1 is trusted, 127.0.0.2 is not).
func extauthzConn(t *testing.T, addr, from string) *grpc.ClientConn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// extauthzRequest builds the CheckRequest Envoy sends for a request from
// client (the downstream address) with the given headers (lower case, as
// Envoy sends them).
func extauthzRequest(method, path, client string, hdr map[string]string) *authv3.CheckRequest {
	h := map[string]string{":method": method, ":path": path, ":authority": "api.example.com", "user-agent": "curl/8"}
	for k, v := range hdr {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: client, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Host: "api.example.com", Scheme: "https", Protocol: "HTTP/1.1", Headers: h,
		}},
	}}
}

// extauthzCheck calls Check with a bound deadline.
func extauthzCheck(t *testing.T, cc *grpc.ClientConn, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(cc).Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

// extauthzSet returns the headers an OK answer sets, by lower-case name.
func extauthzSet(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, o := range resp.GetOkResponse().GetHeaders() {
		out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			out[o.GetHeader().GetKey()] += " (appended!)"
		}
	}
	return out
}

// extauthzDenied checks a DENIED answer: the HTTP status, our JSON code,
// and WWW-Authenticate with a 401.
func extauthzDenied(t *testing.T, resp *authv3.CheckResponse, status int, code string) {
	t.Helper()
	d := resp.GetDeniedResponse()
	if resp.GetStatus().GetCode() == int32(codes.OK) || d == nil {
		t.Fatalf("want DENIED %d %s, got status %v, ok %v", status, code, resp.GetStatus(), resp.GetOkResponse())
	}
	if got := int(d.GetStatus().GetCode()); got != status {
		t.Fatalf("denied HTTP status %d, want %d (%s)", got, status, d.GetBody())
	}
	var body struct{ Detail, Code string }
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil || body.Code != code || body.Detail == "" {
		t.Fatalf("denied body %q (%v), want code %q", d.GetBody(), err, code)
	}
	hdr := map[string]string{}
	for _, o := range d.GetHeaders() {
		hdr[strings.ToLower(o.GetHeader().GetKey())] = o.GetHeader().GetValue()
	}
	if hdr["content-type"] != "application/json" {
		t.Fatalf("denied content-type %q", hdr["content-type"])
	}
	if (status == 401) != (hdr["www-authenticate"] != "") {
		t.Fatalf("status %d with WWW-Authenticate %q", status, hdr["www-authenticate"])
	}
}

// Envoy's ext_authz gRPC Check gets the same decision as /auth/check:
// allowed with the identity headers to set, forbidden, unauthenticated,
// and the path tricks refused.
func TestSecExtauthzDecision(t *testing.T) {
	e := extauthzStart(t)
	p := e.people
	cc := extauthzConn(t, e.addr, "127.0.0.1")
	bearer := func(tok string) map[string]string {
		if tok == "" {
			return nil
		}
		return map[string]string{"authorization": "Bearer " + tok}
	}
	tests := []struct {
		name, method, path, token string
		status                    int // 200: OK
		code, wantID              string
	}{
		{"allowed", "GET", "/api/billing/invoices?x=1", p.alice, 200, "", p.aliceID},
		{"allowed POST", "POST", "/api/billing/invoices", p.alice, 200, "", p.aliceID},
		{"staff allowed", "GET", "/api/billing/", p.carol, 200, "", p.carolID},
		{"forbidden by the rule", "GET", "/api/billing/invoices", p.bob, 403, "permission_denied", ""},
		{"anonymous on required", "GET", "/api/billing/invoices", "", 401, "not_authenticated", ""},
		{"bad token", "GET", "/api/x", "not.a.jwt", 401, "token_not_valid", ""},
		{"anonymous on optional", "GET", "/feed/x", "", 200, "", ""},
		{"token on optional", "GET", "/feed/x", p.bob, 200, "", p.bobID},
		{"auth none", "GET", "/public/x", "not.a.jwt", 200, "", ""},
		{"no route", "GET", "/nowhere/", p.carol, 403, "permission_denied", ""},
		{"method not allowed", "DELETE", "/api/reports/x", p.bob, 403, "permission_denied", ""},
		{"method in lower case", "delete", "/api/reports/x", p.bob, 403, "permission_denied", ""},
		{"method not a token", "GE T", "/api/reports/x", p.bob, 403, "permission_denied", ""},
		{"dot-dot into billing", "GET", "/api/reports/../billing/", p.bob, 403, "permission_denied", ""},
		{"encoded dot-dot", "GET", "/api/reports/%2e%2e/billing/", p.bob, 403, "permission_denied", ""},
		{"path parameter dot-dot", "GET", "/api/billing/..;/x", p.bob, 403, "permission_denied", ""},
		{"path parameter dot-dot out of reports", "GET", "/api/reports/..;/billing/x", p.bob, 403, "permission_denied", ""},
		{"backslash", "GET", `/api/reports/..\billing/x`, p.bob, 403, "permission_denied", ""},
		{"encoded slash", "GET", "/api/reports%2f..%2fbilling/x", p.bob, 403, "permission_denied", ""},
		{"case of the prefix", "GET", "/API/billing/x", p.bob, 403, "permission_denied", ""},
		{"absolute form", "GET", "http://evil/api/billing/x", p.alice, 403, "permission_denied", ""},
		{"fragment", "GET", "/api/billing/x#y", p.alice, 403, "permission_denied", ""},
		{"empty path", "GET", "", p.alice, 403, "permission_denied", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := extauthzCheck(t, cc, extauthzRequest(tt.method, tt.path, "203.0.113.9", bearer(tt.token)))
			if tt.status != 200 {
				extauthzDenied(t, resp, tt.status, tt.code)
				return
			}
			if resp.GetStatus().GetCode() != int32(codes.OK) || resp.GetOkResponse() == nil {
				t.Fatalf("want OK, got %v %s", resp.GetStatus(), resp.GetDeniedResponse().GetBody())
			}
			set := extauthzSet(resp)
			if set["x-user-id"] != tt.wantID {
				t.Fatalf("x-user-id set to %q, want %q (%v)", set["x-user-id"], tt.wantID, set)
			}
			if tt.wantID == p.aliceID && set["x-user-services"] != `["billing"]` {
				t.Fatalf("x-user-services %q", set["x-user-services"])
			}
		})
	}
	if h := e.hits(); h != [4]int64{} {
		t.Fatalf("ext_authz forwarded requests upstream: %v", h)
	}
}

// A client's own identity headers, in every spelling, are removed by the
// OK answer (and overwritten when the gateway sets that header); a token
// the route forwards is kept; the untrusted peer is refused.
func TestSecExtauthzSpoofedHeaders(t *testing.T) {
	e := extauthzStart(t)
	p := e.people
	cc := extauthzConn(t, e.addr, "127.0.0.1")
	spoof := map[string]string{
		"x-user-id": "666", "x_user_id": "666", "x.user.email": "evil@example.com",
		"x-user-is-staff": "true", "x-user-token": "forged", "x_real_ip": "10.0.0.1",
	}
	with := func(tok string) map[string]string {
		h := map[string]string{}
		for k, v := range spoof {
			h[k] = v
		}
		if tok != "" {
			h["authorization"] = "Bearer " + tok
		}
		return h
	}
	t.Run("authenticated", func(t *testing.T) {
		resp := extauthzCheck(t, cc, extauthzRequest("GET", "/api/billing/x", "203.0.113.9", with(p.alice)))
		set := extauthzSet(resp)
		if set["x-user-id"] != p.aliceID {
			t.Fatalf("x-user-id %q, want %q (%v, %s)", set["x-user-id"], p.aliceID, resp.GetStatus(), resp.GetDeniedResponse().GetBody())
		}
		rm := resp.GetOkResponse().GetHeadersToRemove()
		for _, k := range []string{"x_user_id", "x.user.email", "x-user-is-staff", "x-user-token", "x_real_ip"} {
			if _, overwritten := set[k]; !overwritten && !slices.Contains(rm, k) {
				t.Errorf("spoofed %s neither removed nor overwritten (remove %v, set %v)", k, rm, set)
			}
		}
		if slices.Contains(rm, "x-user-id") {
			t.Errorf("x-user-id both set and removed: %v", rm)
		}
		if slices.Contains(rm, "authorization") || slices.Contains(rm, "user-agent") {
			t.Errorf("removes headers the route forwards: %v", rm)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		resp := extauthzCheck(t, cc, extauthzRequest("GET", "/feed/x", "203.0.113.9", with("")))
		if len(extauthzSet(resp)) != 0 {
			t.Fatalf("anonymous answer sets %v", extauthzSet(resp))
		}
		rm := resp.GetOkResponse().GetHeadersToRemove()
		for k := range spoof {
			if !slices.Contains(rm, k) {
				t.Errorf("spoofed %s not removed: %v", k, rm)
			}
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		stranger := extauthzConn(t, e.addr, "127.0.0.2")
		for _, path := range []string{"/api/billing/x", "/public/x"} {
			resp := extauthzCheck(t, stranger, extauthzRequest("GET", path, "127.0.0.1", with(p.alice)))
			extauthzDenied(t, resp, 403, "permission_denied")
		}
	})
	t.Run("two tokens in the raw header list", func(t *testing.T) {
		req := extauthzRequest("GET", "/api/billing/x", "203.0.113.9", nil)
		hr := req.Attributes.Request.Http
		hr.Headers = nil
		hr.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":path", RawValue: []byte("/api/billing/x")},
			{Key: "authorization", RawValue: []byte("Bearer " + p.alice)},
			{Key: "authorization", RawValue: []byte("Bearer " + p.bob)},
		}}
		resp := extauthzCheck(t, cc, req)
		if resp.GetOkResponse() != nil {
			t.Fatalf("two tokens allowed: %v", extauthzSet(resp))
		}
	})
	t.Run("raw header list", func(t *testing.T) {
		req := extauthzRequest("GET", "/api/billing/x", "203.0.113.9", nil)
		hr := req.Attributes.Request.Http
		hr.Headers = nil
		hr.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "authorization", RawValue: []byte("Bearer " + p.alice)},
			{Key: "x-user-id", RawValue: []byte("666")},
		}}
		resp := extauthzCheck(t, cc, req)
		if got := extauthzSet(resp)["x-user-id"]; got != p.aliceID {
			t.Fatalf("x-user-id %q (%s)", got, resp.GetDeniedResponse().GetBody())
		}
	})
}

// The gRPC health service answers SERVING for the server and for the
// Authorization service (what Envoy's and Kubernetes' gRPC probes ask).
func TestSecExtauthzHealth(t *testing.T) {
	e := extauthzStart(t)
	cc := extauthzConn(t, e.addr, "127.0.0.1")
	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		cancel()
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: %v %v", svc, resp, err)
		}
	}
}

// Without ext_authz.grpc_listen there is no gRPC server.
func TestSecExtauthzOffByDefault(t *testing.T) {
	e := startEdge(t, checkRoutes)
	if e.gw.GW.ExtAuthz != nil {
		t.Fatal("ExtAuthz built without ext_authz.grpc_listen")
	}
}

// extauthzListen listens on a free loopback port.
func extauthzListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
