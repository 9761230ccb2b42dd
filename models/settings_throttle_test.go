package models_test

import (
	"strings"
	"testing"
	"time"

	"jwtgate/models"
)

func TestThrottleParseLimit(t *testing.T) {
	tests := []struct {
		in   string
		want models.Limit
		err  string
	}{
		{"off", models.Limit{}, ""},
		{"10/minute", models.Limit{N: 10, Per: time.Minute}, ""},
		{"10/min", models.Limit{N: 10, Per: time.Minute}, ""},
		{"10/m", models.Limit{N: 10, Per: time.Minute}, ""},
		{"3/hour", models.Limit{N: 3, Per: time.Hour}, ""},
		{"1/day", models.Limit{N: 1, Per: 24 * time.Hour}, ""},
		{"20/second", models.Limit{N: 20, Per: time.Second}, ""},
		{"10/15m", models.Limit{N: 10, Per: 15 * time.Minute}, ""},
		{"100/1h30m", models.Limit{N: 100, Per: 90 * time.Minute}, ""},
		{"5/500ms", models.Limit{N: 5, Per: 500 * time.Millisecond}, ""},
		{"10/fortnight", models.Limit{}, "fortnight"},
		{"10/0s", models.Limit{}, "0s"},
		{"10/-5m", models.Limit{}, "-5m"},
		{"0/minute", models.Limit{}, "0/minute"},
		{"-1/minute", models.Limit{}, "-1/minute"},
		{"+5/minute", models.Limit{}, "+5/minute"},
		{"05/minute", models.Limit{}, "05/minute"},
		{" 5/minute", models.Limit{}, "5/minute"},
		{"5/ minute", models.Limit{}, "minute"},
		{"5", models.Limit{}, `"5"`},
		{"", models.Limit{}, `""`},
		{"OFF", models.Limit{}, "OFF"},
		{"2000000/second", models.Limit{}, "2000000"},
		{"1000/1ns", models.Limit{}, "nanosecond"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := models.ParseLimit(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseLimit(%q) = %v, %v; want an error naming %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLimit(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestThrottleSettingsDefaults(t *testing.T) {
	s, err := load(t, "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n")
	if err != nil {
		t.Fatal(err)
	}
	th := settingsCompile(t, s).Throttle
	if th.AccountLimit != (models.Limit{N: 10, Per: 15 * time.Minute}) {
		t.Errorf("failures_per_account default %v, want 10/15m", th.AccountLimit)
	}
	if th.ClientLimit != (models.Limit{N: 100, Per: 15 * time.Minute}) {
		t.Errorf("failures_per_client default %v, want 100/15m", th.ClientLimit)
	}
	if th.CallsHome != (models.Limit{N: 20, Per: time.Second}) {
		t.Errorf("calls_home_per_client default %v, want 20/second", th.CallsHome)
	}
	if th.LoginEvery != 0 || th.LoginField != "" || th.AccountsSize <= 0 {
		t.Errorf("login_rate %s, login_field %q, accounts_size %d; want off, empty, positive", th.LoginEvery, th.LoginField, th.AccountsSize)
	}
}

func TestThrottleSettingsErrorsNameTheKey(t *testing.T) {
	tests := []struct{ yaml, key string }{
		{`throttle: {failures_per_account: "10/fortnight"}`, "throttle.failures_per_account"},
		{`throttle: {failures_per_client: "ten/15m"}`, "throttle.failures_per_client"},
		{`throttle: {calls_home_per_client: "20"}`, "throttle.calls_home_per_client"},
		{`throttle: {login_rate: "10/0s"}`, "throttle.login_rate"},
		{`throttle: {accounts_size: 0}`, "throttle.accounts_size"},
		{`throttle: {login_field: " email"}`, "throttle.login_field"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := load(t, tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("%s: error %v, want one naming %s", tt.yaml, err, tt.key)
			}
		})
	}
	s, err := load(t, `throttle: {failures_per_account: "off", failures_per_client: "off", calls_home_per_client: "off", login_rate: "5/15m"}`)
	if err != nil {
		t.Fatal(err)
	}
	if th := settingsCompile(t, s).Throttle; !th.AccountLimit.Off() || !th.ClientLimit.Off() || !th.CallsHome.Off() || th.LoginEvery != 3*time.Minute {
		t.Fatalf("off/5/15m parsed as %+v", th)
	}
}
