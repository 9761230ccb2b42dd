package models_test

import (
	"strings"
	"testing"
	"time"

	"jwtgate/models"
)

func TestRatelimitSettings(t *testing.T) {
	route := func(rl string) string {
		return "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n    rate_limit: " + rl + "\n"
	}
	tests := []struct {
		name, yaml, wantErr string
		user, client        models.Limit
		burst               int
	}{
		{"default off", "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n", "", models.Limit{}, models.Limit{}, 0},
		{"both", route(`{per_user: "600/minute", per_client: "60/minute"}`), "", models.Limit{N: 600, Per: time.Minute}, models.Limit{N: 60, Per: time.Minute}, 0},
		{"duration unit and burst", route(`{per_user: "10/15m", burst: 3}`), "", models.Limit{N: 10, Per: 15 * time.Minute}, models.Limit{}, 3},
		{"off spelled", route(`{per_user: "off"}`), "", models.Limit{}, models.Limit{}, 0},
		{"no unit", route(`{per_user: "600"}`), "routes[0].rate_limit.per_user", models.Limit{}, models.Limit{}, 0},
		{"zero", route(`{per_client: "0/minute"}`), "routes[0].rate_limit.per_client", models.Limit{}, models.Limit{}, 0},
		{"negative", route(`{per_client: "-1/minute"}`), "routes[0].rate_limit.per_client", models.Limit{}, models.Limit{}, 0},
		{"unknown unit", route(`{per_user: "5/fortnight"}`), "routes[0].rate_limit.per_user", models.Limit{}, models.Limit{}, 0},
		{"negative burst", route(`{per_user: "5/minute", burst: -1}`), "routes[0].rate_limit.burst", models.Limit{}, models.Limit{}, 0},
		{"unknown key", route(`{per_ip: "5/minute"}`), "rate_limit", models.Limit{}, models.Limit{}, 0},
		{"per_user on auth none", "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n    auth: none\n    rate_limit: {per_user: \"5/minute\"}\n",
			"routes[0].rate_limit.per_user", models.Limit{}, models.Limit{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := load(t, tt.yaml)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rl := s.Routes[0].RateLimit
			u, c := rl.Limits()
			if u != tt.user || c != tt.client || rl.Burst != tt.burst {
				t.Fatalf("limits %v %v burst %d, want %v %v %d", u, c, rl.Burst, tt.user, tt.client, tt.burst)
			}
		})
	}
	if got := (models.RouteRateLimit{}).BurstFor(models.Limit{N: 600, Per: time.Minute}); got != 600 {
		t.Fatalf("burst 0 gives %d, want the limit's N", got)
	}
}
