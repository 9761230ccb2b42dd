package handlers

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/models"
)

func browserTestMode() *browser {
	cfg := models.DefaultBrowser()
	cfg.Enabled, cfg.AccessCookie = true, true
	cfg.AllowedOrigins = []string{"https://app.example.com"}
	return newBrowser(cfg, time.Now)
}

func TestBrowserStripTokenCookies(t *testing.T) {
	b := browserTestMode()
	tests := []struct {
		name string
		in   []string
		want string // the Cookie header after; "" for none
	}{
		{"only tokens", []string{"access_token=a; refresh_token=r"}, ""},
		{"others kept", []string{"theme=dark; access_token=a; lang=en"}, "theme=dark; lang=en"},
		{"case", []string{"ACCESS_TOKEN=a; Refresh_Token=r; x=1"}, "x=1"},
		{"prefixes", []string{"__Host-access_token=a; __secure-refresh_token=r; x=1"}, "x=1"},
		{"spaces", []string{" access_token = a ;x=1"}, "x=1"},
		{"two lines", []string{"x=1", "access_token=a"}, "x=1"},
		{"no value", []string{"access_token; x=1"}, "x=1"},
		{"csrf kept", []string{"csrftoken=c; access_token=a"}, "csrftoken=c"},
		{"lookalike kept", []string{"access_token2=a; my_access_token=b"}, "access_token2=a; my_access_token=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": tt.in}
			b.stripTokenCookies(h)
			if got := strings.Join(h.Values("Cookie"), "|"); got != tt.want {
				t.Fatalf("Cookie %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBrowserCookieValue(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		want  string
		twice bool
	}{
		{"plain", []string{"a=1; access_token=tok"}, "tok", false},
		{"quoted", []string{`access_token="tok"`}, "tok", false},
		{"case is another cookie", []string{"Access_Token=tok"}, "", false},
		{"twice", []string{"access_token=a; access_token=b"}, "b", true},
		{"twice over lines", []string{"access_token=a", "access_token=b"}, "b", true},
		{"none", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, twice := cookie(http.Header{"Cookie": tt.in}, "access_token")
			if got != tt.want || twice != tt.twice {
				t.Fatalf("cookie = %q, %v; want %q, %v", got, twice, tt.want, tt.twice)
			}
		})
	}
}

func TestBrowserGuard(t *testing.T) {
	b := browserTestMode()
	const host = "gw.example.com"
	ok := func(origin, csrfHdr, cookieHdr string) error {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if csrfHdr != "" {
			h.Set("X-CSRFToken", csrfHdr)
		}
		h.Set("Cookie", cookieHdr)
		return b.guard(h, host)
	}
	tests := []struct {
		name, origin, csrf, cookie string
		want                       error
	}{
		{"same origin https", "https://gw.example.com", "c", "csrftoken=c", nil},
		{"same origin http", "http://gw.example.com", "c", "csrftoken=c", nil},
		{"listed", "https://app.example.com", "c", "csrftoken=c", nil},
		{"other port", "https://gw.example.com:8443", "c", "csrftoken=c", errOriginNotAllowed},
		{"suffix", "https://gw.example.com.evil.test", "c", "csrftoken=c", errOriginNotAllowed},
		{"listed with slash", "https://app.example.com/", "c", "csrftoken=c", errOriginNotAllowed},
		{"null", "null", "c", "csrftoken=c", errOriginNotAllowed},
		{"none", "", "c", "csrftoken=c", errOriginNotAllowed},
		{"no header", "https://gw.example.com", "", "csrftoken=c", errCSRFFailed},
		{"no cookie", "https://gw.example.com", "c", "", errCSRFFailed},
		{"mismatch", "https://gw.example.com", "d", "csrftoken=c", errCSRFFailed},
		{"prefix", "https://gw.example.com", "c", "csrftoken=cc", errCSRFFailed},
		{"cookie twice", "https://gw.example.com", "c", "csrftoken=c; csrftoken=c", errCSRFFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ok(tt.origin, tt.csrf, tt.cookie); got != tt.want {
				t.Fatalf("guard = %v, want %v", got, tt.want)
			}
		})
	}
	h := http.Header{"Referer": {"https://gw.example.com/app/x?y"}, "X-Csrftoken": {"c"}, "Cookie": {"csrftoken=c"}}
	if err := b.guard(h, host); err != nil {
		t.Fatalf("Referer fallback: %v", err)
	}
}

func TestBrowserWSProtocolToken(t *testing.T) {
	tok := base64.RawURLEncoding.EncodeToString([]byte("a.b.c"))
	tests := []struct {
		name     string
		in       []string
		raw      string
		found    bool
		wantErr  bool
		remained string
	}{
		{"token and echo", []string{"echo, " + wsTokenPrefix + tok}, "a.b.c", true, false, "echo"},
		{"token only", []string{wsTokenPrefix + tok}, "a.b.c", true, false, ""},
		{"padded", []string{wsTokenPrefix + tok + "=="}, "a.b.c", true, false, ""},
		{"upper prefix", []string{strings.ToUpper(wsTokenPrefix) + tok + ", chat"}, "a.b.c", true, false, "chat"},
		{"none", []string{"echo, chat"}, "", false, false, "echo, chat"},
		{"twice", []string{wsTokenPrefix + tok + ", " + wsTokenPrefix + tok}, "", true, true, ""},
		{"two lines", []string{wsTokenPrefix + tok, wsTokenPrefix + tok}, "", true, true, ""},
		{"not base64", []string{wsTokenPrefix + "!!"}, "", true, true, ""},
		{"empty token", []string{wsTokenPrefix}, "", true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Sec-Websocket-Protocol": tt.in}
			raw, found, err := wsProtocolToken(h)
			if raw != tt.raw || found != tt.found || (err != nil) != tt.wantErr {
				t.Fatalf("= %q, %v, %v", raw, found, err)
			}
			if got := h.Get("Sec-WebSocket-Protocol"); got != tt.remained {
				t.Fatalf("left %q, want %q", got, tt.remained)
			}
		})
	}
}

// FuzzBrowserCookieStrip: whatever the Cookie header, no token cookie in
// any spelling survives stripping, and the exact names read nothing after.
func FuzzBrowserCookieStrip(f *testing.F) {
	for _, s := range []string{"access_token=a", "x=1; ACCESS_TOKEN=a", "__Host-refresh_token=r", "a=1;;access_token", `access_token="a"; x`} {
		f.Add(s, "")
	}
	f.Add("x=1", "access_token=b")
	b := browserTestMode()
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"Cookie": {line1}}
		if line2 != "" {
			h.Add("Cookie", line2)
		}
		b.stripTokenCookies(h)
		for _, c := range requestCookies(h) {
			if n := foldCookieName(c.name); n == "access_token" || n == "refresh_token" {
				t.Fatalf("token cookie %q survived in %q", c.name, h.Values("Cookie"))
			}
		}
		if v, twice := cookie(h, "access_token"); v != "" || twice {
			t.Fatalf("access_token still readable: %q", h.Values("Cookie"))
		}
	})
}

// FuzzBrowserWSProtocol: after wsProtocolToken no entry in the token form,
// in any case, is left for the upstream.
func FuzzBrowserWSProtocol(f *testing.F) {
	f.Add("echo, " + wsTokenPrefix + "YS5iLmM")
	f.Add(strings.ToUpper(wsTokenPrefix) + "x")
	f.Add(wsTokenPrefix + "," + wsTokenPrefix)
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{"Sec-Websocket-Protocol": {v}}
		_, _, _ = wsProtocolToken(h)
		for _, el := range strings.Split(h.Get("Sec-WebSocket-Protocol"), ",") {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(el)), wsTokenPrefix) {
				t.Fatalf("token entry left: %q", h.Get("Sec-WebSocket-Protocol"))
			}
		}
	})
}

// TestBrowserCORSWriterDeadlines: the CORS writer does not hide the
// connection from http.ResponseController, so body timeouts still apply
// in browser mode.
func TestBrowserCORSWriterDeadlines(t *testing.T) {
	b := browserTestMode()
	errc := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw := &corsWriter{ResponseWriter: ginWriterFor(w), b: b, origin: "https://app.example.com", single: true}
		errc <- http.NewResponseController(gw).SetReadDeadline(time.Now().Add(time.Minute))
		gw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-errc; err != nil {
		t.Fatalf("SetReadDeadline through corsWriter: %v", err)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || resp.Header.Get("Vary") != "Origin" {
		t.Fatalf("CORS headers: %v", resp.Header)
	}
}

// ginWriterFor wraps w in gin's ResponseWriter, as a gin handler sees it.
func ginWriterFor(w http.ResponseWriter) gin.ResponseWriter {
	c, _ := gin.CreateTestContext(w)
	return c.Writer
}

// TestBrowserWSProtocolKeyCanonical: the Sec-WebSocket-Protocol key the
// hot path reads directly is the header's canonical key.
func TestBrowserWSProtocolKeyCanonical(t *testing.T) {
	if got := http.CanonicalHeaderKey("Sec-WebSocket-Protocol"); got != headerWSProtocol {
		t.Fatalf("canonical key %q, headerWSProtocol %q", got, headerWSProtocol)
	}
}
