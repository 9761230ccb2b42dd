package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that run's output and the test may touch concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        string
		wantSecret bool // a random secret is announced on stderr
	}{
		{"flag secret", []string{"-secret", "flag-key"}, "", false},
		{"env secret", nil, "env-key", false},
		{"random secret", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var stdout, stderr syncBuffer
			getenv := func(k string) string {
				if k == "FAKEAUTH_SECRET" {
					return tt.env
				}
				return ""
			}
			args := append([]string{"-listen", "127.0.0.1:0", "-users", "3"}, tt.args...)
			done := make(chan error, 1)
			go func() { done <- run(ctx, args, getenv, &stdout, &stderr) }()

			var base string
			deadline := time.Now().Add(5 * time.Second)
			for base == "" {
				select {
				case err := <-done:
					t.Fatalf("run returned early: %v; stderr=%s", err, stderr.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("no URL printed within 5s")
				}
				base, _, _ = strings.Cut(stdout.String(), "\n")
				time.Sleep(5 * time.Millisecond)
			}
			if !strings.HasPrefix(base, "http://127.0.0.1:") {
				t.Fatalf("printed %q", base)
			}
			if got := strings.Contains(stderr.String(), "random HS256 secret"); got != tt.wantSecret {
				t.Errorf("secret announced = %v; stderr=%s", got, stderr.String())
			}

			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Post(base+"/auth/token/", "application/json", strings.NewReader(`{"email":"user3@example.com","password":"password"}`))
			if err != nil {
				t.Fatal(err)
			}
			var pair struct{ Access string }
			err = json.NewDecoder(resp.Body).Decode(&pair)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil || pair.Access == "" {
				t.Fatalf("login: %d %v", resp.StatusCode, err)
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/auth/user/", nil)
			req.Header.Set("Authorization", "Bearer "+pair.Access)
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var rec struct {
				ID       int64
				Email    string
				Services []string
			}
			err = json.NewDecoder(resp.Body).Decode(&rec)
			resp.Body.Close()
			if err != nil || rec.ID != 3 || rec.Email != "user3@example.com" || len(rec.Services) != 1 || rec.Services[0] != "billing" {
				t.Fatalf("record %+v, err %v", rec, err)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run did not return within 5s of cancellation")
			}
			if !strings.Contains(stderr.String(), "fakeauth: 2 requests") {
				t.Errorf("exit report missing: %s", stderr.String())
			}
		})
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-users", "-1"}, {"-nope"}, {"extra"}, {"-listen", "256.1.1.1:1"}} {
		var out syncBuffer
		if err := run(t.Context(), args, func(string) string { return "" }, &out, &out); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// TestRunStats: with -stats-listen the counters are served as JSON while
// the service runs, at the URL printed on stdout's second line.
func TestRunStats(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	args := []string{"-listen", "127.0.0.1:0", "-users", "1", "-secret", "k", "-stats-listen", "127.0.0.1:0"}
	go func() { done <- run(ctx, args, func(string) string { return "" }, &stdout, &stderr) }()
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no stats URL within 5s: %q %s", stdout.String(), stderr.String())
		}
		lines = strings.Split(stdout.String(), "\n")
	}
	base, stats := lines[0], strings.TrimPrefix(lines[1], "stats ")
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post(base+"/auth/token/verify/", "application/json", strings.NewReader(`{"token":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Get(stats)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Total int64
		Paths map[string]int64
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.Total != 1 || got.Paths["/auth/token/verify/"] != 1 {
		t.Fatalf("stats %+v %v", got, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return")
	}
}
