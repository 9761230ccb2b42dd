package cli

import (
	"context"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var extauthzServing = regexp.MustCompile(`ext_authz_grpc_listen=(\S+)`)

// serve starts the gRPC ext_authz server on ext_authz.grpc_listen (its
// health service answers), and none by default.
func TestExtauthzServeGRPCListen(t *testing.T) {
	logs, err := secMiscServe(t, "metrics_listen: \"\"\next_authz: {grpc_listen: \"127.0.0.1:0\"}")
	if err != nil {
		t.Fatal(err)
	}
	m := extauthzServing.FindStringSubmatch(logs.String())
	if m == nil || m[1] == "off" {
		t.Fatalf("serving line:\n%s", logs.String())
	}
	cc, err := grpc.NewClient("passthrough:///"+m[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}

	logs, err = secMiscServe(t, `metrics_listen: ""`)
	if err != nil {
		t.Fatal(err)
	}
	if m := extauthzServing.FindStringSubmatch(logs.String()); m == nil || m[1] != "off" {
		t.Fatalf("ext_authz on by default:\n%s", logs.String())
	}
}
