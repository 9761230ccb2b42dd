package models

import (
	"fmt"
	"strings"
	"testing"
)

// identity_headers.fields naming a claim the identity token carries is
// refused, naming the key and the field, in any case and with '-' for '_'.
func TestSecMiscIdentityFieldsReservedClaims(t *testing.T) {
	for _, f := range []string{
		"sub", "SUB", "Sub", "iss", "aud", "exp", "nbf", "iat", "jti", "JTI",
		"email", "username", "is_staff", "is-staff", "Is-Superuser", "id", "token",
	} {
		yaml := fmt.Sprintf("routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n  - path: /b/\n    upstream: http://127.0.0.1:9\n    identity_headers: {fields: [services, %q]}\n", f)
		_, err := LoadSettings(strings.NewReader(yaml), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "routes[1].identity_headers.fields[1]") || !strings.Contains(err.Error(), fmt.Sprintf("%q", f)) {
			t.Errorf("field %q: %v; want an error naming routes[1].identity_headers.fields[1] and the field", f, err)
		}
	}
	for _, fields := range []string{"[services, Services]", "[team_name, team-name]"} {
		yaml := "routes:\n  - path: /b/\n    upstream: http://127.0.0.1:9\n    identity_headers: {fields: " + fields + "}\n"
		if _, err := LoadSettings(strings.NewReader(yaml), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "listed twice") {
			t.Errorf("fields %s (one header): %v; want listed twice", fields, err)
		}
	}
	ok := "routes:\n  - path: /b/\n    upstream: http://127.0.0.1:9\n    identity_headers: {fields: [services, subject, jti_count, department]}\n"
	if _, err := LoadSettings(strings.NewReader(ok), func(string) string { return "" }); err != nil {
		t.Fatalf("ordinary fields refused: %v", err)
	}
}

// metrics_listen defaults to loopback; check warns when it is not.
func TestSecMiscMetricsListenWarning(t *testing.T) {
	for addr, warn := range map[string]bool{
		"": false, "127.0.0.1:9090": false, "127.0.0.2:9090": false, "[::1]:9090": false, "localhost:9090": false,
		"[::ffff:127.0.0.1]:9090": false, "0.0.0.0:9090": true, ":9090": true, "[::]:9090": true, "10.0.0.5:9090": true,
		"metrics.internal:9090": true,
	} {
		s, err := LoadSettings(strings.NewReader(fmt.Sprintf("metrics_listen: %q\n", addr)), func(string) string { return "" })
		if err != nil {
			t.Fatalf("%q: %v", addr, err)
		}
		got := strings.Contains(strings.Join(s.Warnings(), "\n"), "metrics_listen")
		if got != warn {
			t.Errorf("metrics_listen %q: warning %t, want %t (%q)", addr, got, warn, s.Warnings())
		}
	}
	if s := DefaultSettings(); s.MetricsListen != "127.0.0.1:9090" {
		t.Errorf("default metrics_listen %q", s.MetricsListen)
	}
	_, err := LoadSettings(strings.NewReader("listen: \"127.0.0.1:9090\"\n"), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "metrics_listen") {
		t.Errorf("listen on the default metrics port: %v; want metrics_listen must differ", err)
	}
}
