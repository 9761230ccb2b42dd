// Package tracing sets up OpenTelemetry traces for jwtgate: an OTLP/HTTP
// exporter configured by the standard OTEL_* environment variables, and
// the W3C trace context propagator. It knows nothing of Gin; the handlers
// start the spans. When tracing is off nothing here is built, so the warm
// path pays nothing.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Enabled reports whether tracing is on: the tracing.enabled setting when
// set, else whether an OTLP endpoint is configured in the environment.
func Enabled(setting *bool, getenv func(string) string) bool {
	if setting != nil {
		return *setting
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Tracing is a running tracer provider and the propagator.
type Tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// New builds the OTLP/HTTP exporter and a batching tracer provider. The
// exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT,
// ...; the provider OTEL_TRACES_SAMPLER(_ARG) and the OTEL_BSP_*
// settings; the resource OTEL_SERVICE_NAME (default "jwtgate") and
// OTEL_RESOURCE_ATTRIBUTES. version is the service.version.
func New(ctx context.Context, version string, getenv func(string) string) (*Tracing, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	var attrs []attribute.KeyValue
	if version != "" {
		attrs = append(attrs, semconv.ServiceVersion(version))
	}
	if getenv("OTEL_SERVICE_NAME") == "" {
		attrs = append(attrs, semconv.ServiceName("jwtgate"))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{
		tp:     tp,
		tracer: tp.Tracer("jwtgate"),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

// Shutdown exports the spans still buffered and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }

// Tracer is the tracer the gateway's spans come from.
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// Extract returns ctx with the remote span context of a traceparent /
// tracestate in h: call it only for a trusted proxy's request.
func (t *Tracing) Extract(ctx context.Context, h http.Header) context.Context {
	return t.prop.Extract(ctx, propagation.HeaderCarrier(h))
}

// callMarkKey carries a *atomic.Bool set when a traced call leaves the
// process (Transport) under the context: the authentication span says so.
type callMarkKey struct{}

// WithCallMark returns ctx with a fresh mark, and the mark.
func WithCallMark(ctx context.Context) (context.Context, *atomic.Bool) {
	m := new(atomic.Bool)
	return context.WithValue(ctx, callMarkKey{}, m), m
}

// Transport traces every call through next made within a traced request
// (background calls are left alone) as a client span named by
// name (never the raw path: ids stay out of span names) and sends the
// trace context along in traceparent / tracestate, replacing any the
// request carried.
func (t *Tracing) Transport(next http.RoundTripper, name func(*http.Request) string) http.RoundTripper {
	return &transport{t: t, next: next, name: name}
}

type transport struct {
	t    *Tracing
	next http.RoundTripper
	name func(*http.Request) string
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(r.Context()).IsValid() {
		// Background work (readiness probes, JWKS refreshes) is not traced:
		// a root trace every few seconds would bury the requests' traces.
		return tr.next.RoundTrip(r)
	}
	ctx, span := tr.t.tracer.Start(r.Context(), tr.name(r), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.ServerAddress(r.URL.Hostname())))
	defer span.End()
	if m, ok := ctx.Value(callMarkKey{}).(*atomic.Bool); ok {
		m.Store(true)
	}
	out := r.Clone(ctx)
	out.Header.Del("Traceparent")
	out.Header.Del("Tracestate")
	tr.t.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := tr.next.RoundTrip(out)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "call failed")
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}

// CloseIdleConnections closes next's idle connections.
func (tr *transport) CloseIdleConnections() {
	if c, ok := tr.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
