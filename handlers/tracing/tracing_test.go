package tracing

import "testing"

func TestTracingEnabled(t *testing.T) {
	yes, no := true, false
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	tests := []struct {
		name    string
		setting *bool
		env     map[string]string
		want    bool
	}{
		{"unset, no endpoint", nil, nil, false},
		{"unset, endpoint", nil, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"unset, traces endpoint", nil, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"unset, other OTEL variable only", nil, map[string]string{"OTEL_SERVICE_NAME": "gw"}, false},
		{"false wins over the endpoint", &no, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false},
		{"true without endpoint", &yes, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Enabled(tt.setting, env(tt.env)); got != tt.want {
				t.Fatalf("Enabled = %v, want %v", got, tt.want)
			}
		})
	}
}
