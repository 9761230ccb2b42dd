package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// upstreamBody is what the benchmark's API answers.
var upstreamBody = []byte(`{"ok":true,"items":[1,2,3]}`)

// upstreamHandler answers 200 with a small JSON body, reading any request
// body first so keep-alive connections stay usable. A path ending in
// /_headers is answered with the request's headers instead, one
// "Name: value" line each, sorted: how run.sh learns which headers a
// gateway adds on the way upstream.
func upstreamHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/_headers") {
			var lines []string
			for k, vs := range r.Header {
				for _, v := range vs {
					lines = append(lines, k+": "+v+"\n")
				}
			}
			slices.Sort(lines)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, strings.Join(lines, ""))
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		_, _ = w.Write(upstreamBody)
	})
}

// proxyHandler is a bare httputil.ReverseProxy to target, tuned as the
// gateway's proxies are (connection pooling, pooled copy buffers), so the
// two differ by what the gateway does, not by how it dials or allocates.
// Each of extra is set on every outbound request: run.sh gives it the
// headers a gateway adds (its request id and identity headers), so the
// upstream reads requests of the same size from both.
func proxyHandler(target *url.URL, extra ...headerFlag) http.Handler {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			for _, h := range extra {
				pr.Out.Header[h.key] = []string{h.value}
			}
		},
		Transport:  t,
		BufferPool: &bufferPool{p: sync.Pool{New: func() any { return new([32 << 10]byte) }}},
		ErrorLog:   log.New(io.Discard, "", 0),
	}
}

// bufferPool lends ReverseProxy 32 KiB copy buffers, as the gateway's does.
type bufferPool struct{ p sync.Pool }

// Get returns a 32 KiB buffer.
func (b *bufferPool) Get() []byte { return b.p.Get().(*[32 << 10]byte)[:] }

// Put takes a buffer back.
func (b *bufferPool) Put(buf []byte) {
	if len(buf) == 32<<10 {
		b.p.Put((*[32 << 10]byte)(buf))
	}
}

// serve listens on a loopback address, prints the URL and serves h until
// ctx ends.
func serve(ctx context.Context, listen string, h http.Handler, stdout io.Writer) error {
	if host, _, err := net.SplitHostPort(listen); err != nil || (host != "127.0.0.1" && host != "localhost") {
		return fmt.Errorf("-listen %q: only 127.0.0.1 is allowed", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func cmdUpstream(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on")
	if err := parse(fs, args); err != nil {
		return err
	}
	return serve(ctx, *listen, upstreamHandler(), stdout)
}

func cmdProxy(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on")
	target := fs.String("target", "", "upstream base URL")
	delay := fs.Duration("delay", 0, "hold every request this long before forwarding it (a slow auth service)")
	var extra headerFlags
	fs.Var(&extra, "header", `a header to send upstream on every request, "Name: value" (repeatable)`)
	if err := parse(fs, args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-target %q: want an http:// URL", *target)
	}
	if *delay < 0 {
		return fmt.Errorf("-delay %s: must not be negative", *delay)
	}
	return serve(ctx, *listen, delayed(*delay, proxyHandler(u, extra...)), stdout)
}

// delayed holds each request for d (less if its client goes away) before
// passing it to h; d = 0 returns h itself.
func delayed(d time.Duration, h http.Handler) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			h.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
}

func cmdFreePort(_ context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, strings.TrimPrefix(addr, "127.0.0.1:"))
	return nil
}

// headerFlag is one -header of the bare proxy: a header it sends upstream.
type headerFlag struct{ key, value string }

// headerFlags collects repeated -header flags.
type headerFlags []headerFlag

// String shows the headers as given.
func (f *headerFlags) String() string {
	var parts []string
	for _, h := range *f {
		parts = append(parts, h.key+": "+h.value)
	}
	return strings.Join(parts, ", ")
}

// Set parses "Name: value".
func (f *headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	k = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
	if !ok || k == "" {
		return fmt.Errorf("-header %q: want \"Name: value\"", s)
	}
	*f = append(*f, headerFlag{key: k, value: strings.TrimSpace(v)})
	return nil
}
