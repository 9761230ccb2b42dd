package remote

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"jwtgate/models"
)

func newTestClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := models.DefaultSettings().AuthService
	cfg.URL, cfg.Timeout = srv.URL, 300*time.Millisecond
	c, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVerifyClassifiesAnswers: only 401 and 400 are definitive refusals;
// everything else that is not 200 means "unavailable", never "invalid".
func TestVerifyClassifiesAnswers(t *testing.T) {
	tests := []struct {
		status  int
		invalid bool
		down    bool
	}{
		{200, false, false},
		{401, true, false},
		{400, true, false},
		{403, false, true},
		{404, false, true},
		{429, false, true},
		{500, false, true},
		{502, false, true},
		{503, false, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/auth/token/verify/" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("request %s %s", r.URL.Path, r.Header.Get("Content-Type"))
				}
				w.WriteHeader(tt.status)
			})
			err := c.Verify(t.Context(), "a.b.c")
			if got := errors.Is(err, models.ErrTokenInvalid); got != tt.invalid {
				t.Fatalf("invalid=%v (%v), want %v", got, err, tt.invalid)
			}
			if got := errors.Is(err, models.ErrAuthUnavailable); got != tt.down {
				t.Fatalf("unavailable=%v (%v), want %v", got, err, tt.down)
			}
		})
	}
}

func TestVerifyTimeoutAndRefused(t *testing.T) {
	slow := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	start := time.Now()
	if err := slow.Verify(t.Context(), "a.b.c"); !errors.Is(err, models.ErrAuthUnavailable) {
		t.Fatalf("slow: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout not applied: %s", d)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := models.DefaultSettings().AuthService
	cfg.URL = "http://" + addr
	c, _ := New(cfg, Options{})
	if err := c.Verify(t.Context(), "a.b.c"); !errors.Is(err, models.ErrAuthUnavailable) {
		t.Fatalf("refused: %v", err)
	}
}

// TestRelayPassesAnswerThrough: any status and body come back unchanged,
// and the request body and content type go out unchanged.
func TestRelayPassesAnswerThrough(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != "email=a&password=b" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("got %q %q", b, r.Header.Get("Content-Type"))
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(418)
		_, _ = w.Write([]byte(`{"teapot":true}`))
	})
	resp, err := c.Relay(t.Context(), EndpointToken, "application/x-www-form-urlencoded", []byte("email=a&password=b"), nil)
	if err != nil || resp.Status != 418 || string(resp.Body) != `{"teapot":true}` || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%+v %v", resp, err)
	}
}

func TestFetchUserClassifies(t *testing.T) {
	for status, want := range map[int]error{401: models.ErrTokenInvalid, 403: models.ErrPermissionDenied, 404: models.ErrUserRejected, 500: models.ErrAuthUnavailable} {
		c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })
		if _, err := c.FetchUser(t.Context(), "tok", "5", time.Now()); !errors.Is(err, want) {
			t.Fatalf("%d: %v, want %v", status, err, want)
		}
	}
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/auth/users/5/" || r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("request %s %q", r.URL.Path, r.Header.Get("Authorization"))
		}
		_, _ = w.Write([]byte(`{"id": 5, "email": "a@x", "is_active": true}`))
	})
	u, err := c.FetchUser(t.Context(), "tok", "5", time.Now())
	if err != nil || u.ID != "5" || u.Email != "a@x" {
		t.Fatalf("%+v %v", u, err)
	}
}
