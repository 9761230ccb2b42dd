package metrics

import "github.com/prometheus/client_golang/prometheus"

// RateLimited returns the counter of a route's requests refused by one of
// its rate limits (limit: per_user or per_client), resolved once at
// startup.
func (m *Metrics) RateLimited(route, limit string) prometheus.Counter {
	return m.rateLimited.WithLabelValues(route, limit)
}
