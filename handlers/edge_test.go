package handlers

import (
	"crypto/ecdsa"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"jwtgate/handlers/keymat"
	"jwtgate/models"
)

func TestHeaderValue(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"acme", "acme"},
		{"Zoë", "Zoë"},
		{"evil\r\nX-User-Id: 1", `"evil\r\nX-User-Id: 1"`},
		{true, "true"},
		{float64(42), "42"},
		{1.5, "1.5"},
		{[]any{"billing", "R&D"}, `["billing","R&D"]`},
		{map[string]any{"tier": "gold"}, `{"tier":"gold"}`},
	}
	for _, tt := range tests {
		if got := headerValue(tt.in); got != tt.want {
			t.Errorf("headerValue(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"},
		{"not-an-ip", "not-an-ip"},
	}
	for _, tt := range tests {
		if got := clientKey(tt.in); got != tt.want {
			t.Errorf("clientKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestThrottleRetryAfter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th, err := newLoginThrottle(models.CompiledThrottle{Throttle: models.Throttle{LoginBurst: 2, CacheSize: 2}, LoginEvery: 6 * time.Second}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if ok, _ := th.allow("a"); !ok {
			t.Fatalf("burst request %d refused", i+1)
		}
	}
	ok, wait := th.allow("a")
	if ok || wait <= 0 || wait > 6*time.Second {
		t.Fatalf("third request: ok %v wait %s, want refused within 6s", ok, wait)
	}
	now = now.Add(wait)
	if ok, _ := th.allow("a"); !ok {
		t.Fatal("refused after waiting Retry-After")
	}
	if off, _ := newLoginThrottle(models.CompiledThrottle{}, time.Now); off != nil {
		t.Fatal("login_rate off still throttles")
	}
}

// Replicas starting at once on one key file agree on one key.
func TestLoadOrCreateKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	var wg sync.WaitGroup
	keys := make([]*ecdsa.PrivateKey, 8)
	for i := range keys {
		wg.Go(func() {
			k, _, err := keymat.LoadOrCreatePrivate(path, models.AlgES256)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k.(*ecdsa.PrivateKey)
		})
	}
	wg.Wait()
	for i, k := range keys {
		if k == nil || !k.Equal(keys[0]) {
			t.Fatalf("replica %d got another key", i)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".jwtgate-key-*")); len(left) != 0 {
		t.Fatalf("temporary key files left behind: %v", left)
	}
	if _, _, err := keymat.LoadOrCreatePrivate(path, models.AlgRS256); err == nil {
		t.Fatal("an EC key was accepted for RS256")
	}
	if err := os.WriteFile(path, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := keymat.LoadOrCreatePrivate(path, models.AlgES256); err == nil {
		t.Fatal("garbage key file accepted")
	}
}
