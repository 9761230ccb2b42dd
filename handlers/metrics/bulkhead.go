package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"jwtgate/remote"
)

// queueWaitBuckets span 0.1ms to ~6s: most calls get a slot at once, a
// storm makes them wait up to auth_service.timeout.
var queueWaitBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 12)

// Bulkhead is remote.BulkheadObserver: the calls home in flight and each
// call's wait for a slot under auth_service.max_in_flight.
type Bulkhead struct {
	inFlight prometheus.Gauge
	admitted prometheus.Observer
	refused  prometheus.Observer
}

// Bulkhead registers the bulkhead's collectors; call it once per Metrics.
func (m *Metrics) Bulkhead() *Bulkhead {
	f := factory{m.reg}
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "jwtgate_auth_service_calls_in_flight",
		Help: "Calls to the auth service holding a slot of auth_service.max_in_flight.",
	})
	f.reg.MustRegister(inFlight)
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jwtgate_auth_service_queue_wait_seconds",
		Help:    "Time a call to the auth service waited for a slot, by outcome (admitted, or timed_out: refused 503 without calling).",
		Buckets: queueWaitBuckets,
	}, []string{"outcome"})
	f.reg.MustRegister(wait)
	return &Bulkhead{inFlight: inFlight, admitted: wait.WithLabelValues("admitted"), refused: wait.WithLabelValues("timed_out")}
}

var _ remote.BulkheadObserver = (*Bulkhead)(nil)

// BulkheadInFlight is told each change of the calls in flight.
func (b *Bulkhead) BulkheadInFlight(delta int) { b.inFlight.Add(float64(delta)) }

// BulkheadWait is told each call's wait for a slot.
func (b *Bulkhead) BulkheadWait(d time.Duration, admitted bool) {
	if admitted {
		b.admitted.Observe(d.Seconds())
		return
	}
	b.refused.Observe(d.Seconds())
}
