package handlers

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"jwtgate/models"
)

// TestThrottleLoginNames: the login name is read as Django would read it,
// so no spelling of a request makes Django check one account's password
// while the gateway counts another (or none).
func TestThrottleLoginNames(t *testing.T) {
	tests := []struct {
		name, mt, body string
		fields         []string
		want           []string
	}{
		{"json email", mediaJSON, `{"email":"alice@example.com","password":"x"}`, nil, []string{"alice@example.com"}},
		{"json both fields", mediaJSON, `{"username":"victim","email":"decoy@x"}`, nil, []string{"decoy@x", "victim"}},
		{"json duplicate key keeps the last", mediaJSON, `{"email":"decoy","email":"alice"}`, nil, []string{"alice"}},
		{"json key case variant is another field", mediaJSON, `{"Email":"alice","EMAIL":"bob"}`, nil, nil},
		{"json key case variant beside the real one", mediaJSON, `{"email":"x","EMAIL":"alice"}`, nil, []string{"x"}},
		{"json escaped key", mediaJSON, `{"em\u0061il":"alice"}`, nil, []string{"alice"}},
		{"json escaped value", mediaJSON, `{"email":"\u0061lice"}`, nil, []string{"alice"}},
		{"json surrounding whitespace trimmed", mediaJSON, `{"email":" \t alice\n\u00a0\u001c"}`, nil, []string{"alice"}},
		{"json blank", mediaJSON, `{"email":"  "}`, nil, nil},
		{"json integer", mediaJSON, `{"username":100}`, nil, []string{"100"}},
		{"json negative zero", mediaJSON, `{"username":-0}`, nil, []string{"0"}},
		{"json big integer", mediaJSON, `{"username":123456789012345678901234567890}`, nil, []string{"123456789012345678901234567890"}},
		{"json float", mediaJSON, `{"username":1e2}`, nil, []string{"100.0"}},
		{"json float exponent", mediaJSON, `{"username":1E16}`, nil, []string{"1e+16"}},
		{"json small float", mediaJSON, `{"username":0.000015}`, nil, []string{"1.5e-05"}},
		{"json overflowing float", mediaJSON, `{"username":1e400}`, nil, []string{"inf"}},
		{"json bool null list object", mediaJSON, `{"email":true,"username":null}`, nil, nil},
		{"json list", mediaJSON, `{"email":["alice"]}`, nil, nil},
		{"json trailing data", mediaJSON, `{"email":"alice"} {}`, nil, nil},
		{"json not an object", mediaJSON, `["alice"]`, nil, nil},
		{"json login_field", mediaJSON, `{"email":"a","phone":"+1 555"}`, []string{"phone"}, []string{"+1 555"}},
		{"form", mediaForm, `email=alice%40example.com&password=x`, nil, []string{"alice@example.com"}},
		{"form duplicate keeps the last", mediaForm, `email=decoy&email=alice`, nil, []string{"alice"}},
		{"form plus is space", mediaForm, `email=+alice+`, nil, []string{"alice"}},
		{"form encoded key", mediaForm, `%65mail=alice`, nil, []string{"alice"}},
		{"form key case variant", mediaForm, `Email=alice`, nil, nil},
		{"form bad escape kept", mediaForm, `username=a%zz%4`, nil, []string{"a%zz%4"}},
		{"form semicolon is not a separator", mediaForm, `username=alice;username=bob`, nil, []string{"alice;username=bob"}},
		{"form no equals sign", mediaForm, `email&username=bob`, nil, []string{"bob"}},
		{"form latin-1 body", mediaForm, "username=caf\xe9", nil, []string{"café"}},
		{"form bad utf-8 escape", mediaForm, "username=caf%E9", nil, []string{"caf\uFFFD"}},
		{"form encoded whitespace trimmed", mediaForm, "username=%20%09alice%0A", nil, []string{"alice"}},
		{"other media type", "multipart/form-data", "email=alice", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := tt.fields
			if fields == nil {
				fields = defaultLoginFields
			}
			got := loginNames(tt.mt, []byte(tt.body), fields)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("loginNames(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestThrottlePythonFloatRepr(t *testing.T) {
	for f, want := range map[float64]string{
		100: "100.0", 1e15: "1000000000000000.0", 1e16: "1e+16", 0.0001: "0.0001", 0.00001: "1e-05",
		1.5: "1.5", -2.25: "-2.25", 1.5e300: "1.5e+300", 123.456: "123.456", 0.1: "0.1",
	} {
		if got := pythonFloatRepr(f); got != want {
			t.Errorf("repr(%v) = %q, want %q", f, got, want)
		}
	}
}

// TestThrottleFoldLoginName: spellings one account could have share a key.
func TestThrottleFoldLoginName(t *testing.T) {
	g := throttleGuard(t, models.CompiledThrottle{})
	same := [][]string{
		{"alice@example.com", "ALICE@Example.COM", "Alice@example.com"},
		{"alice", "ａｌｉｃｅ", "Alice"},
		{"strasse", "STRASSE", "straße"},
	}
	for _, names := range same {
		for _, n := range names[1:] {
			if g.key(n) != g.key(names[0]) {
				t.Errorf("%q and %q counted apart", n, names[0])
			}
		}
	}
	if g.key("alice") == g.key("bob") {
		t.Error("alice and bob share a key")
	}
	other := throttleGuard(t, models.CompiledThrottle{})
	if other.key("alice") == g.key("alice") {
		t.Error("two processes hash login names alike: the key is not per process")
	}
}

func throttleGuard(t *testing.T, th models.CompiledThrottle) *loginGuard {
	t.Helper()
	if th.CacheSize == 0 {
		th.CacheSize = 100
	}
	if th.AccountsSize == 0 {
		th.AccountsSize = 100
	}
	now := time.Unix(1_700_000_000, 0)
	g, err := newLoginGuard(th, 1<<16, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestThrottleAccountWindow drives the guard's bookkeeping directly.
func TestThrottleAccountWindow(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := throttleGuard(t, models.CompiledThrottle{
		AccountLimit: models.Limit{N: 3, Per: 15 * time.Minute},
		ClientLimit:  models.Limit{N: 5, Per: 15 * time.Minute},
	})
	g.now = func() time.Time { return now }
	victim, own := []accountKey{g.key("victim")}, []accountKey{g.key("attacker")}
	try := func(client string, keys []accountKey, status int) time.Duration {
		t.Helper()
		a, wait := g.admit(client, keys)
		if a == nil {
			return wait
		}
		g.done(a, status)
		return 0
	}

	// Three failures from three addresses lock the account for everyone,
	// for the rest of the window, whatever the password.
	for i, c := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		if w := try(c, victim, http.StatusUnauthorized); w != 0 {
			t.Fatalf("failure %d refused", i+1)
		}
	}
	now = now.Add(time.Minute)
	if w := try("10.0.0.9", victim, http.StatusOK); w != 14*time.Minute {
		t.Fatalf("locked account: wait %s, want 14m", w)
	}
	now = now.Add(14 * time.Minute)
	if w := try("10.0.0.9", victim, http.StatusOK); w != 0 {
		t.Fatalf("after the window: wait %s", w)
	}

	// A success clears the failures from its own address only.
	try("10.0.0.1", victim, http.StatusUnauthorized) // attacker
	try("10.0.0.1", victim, http.StatusUnauthorized)
	try("10.0.0.7", victim, http.StatusUnauthorized) // the victim's typo
	if w := try("10.0.0.7", victim, http.StatusOK); w == 0 {
		t.Fatal("account not locked after 3 failures")
	}
	now = now.Add(15 * time.Minute)
	try("10.0.0.7", victim, http.StatusUnauthorized) // typo
	try("10.0.0.1", victim, http.StatusUnauthorized) // attacker
	try("10.0.0.7", victim, http.StatusOK)           // clears the typo only
	try("10.0.0.1", victim, http.StatusUnauthorized) // attacker: 2 failures now
	if w := try("10.0.0.1", victim, http.StatusUnauthorized); w != 0 {
		t.Fatal("third failure refused: the victim's success cleared too much or too little")
	}
	if w := try("10.0.0.7", victim, http.StatusOK); w == 0 {
		t.Fatal("the attacker's failures were cleared by the victim's success")
	}

	// Logging in to one's own account clears neither the victim's count
	// nor the client's own failure count.
	now = now.Add(15 * time.Minute)
	try("10.0.0.5", victim, http.StatusUnauthorized)
	try("10.0.0.5", victim, http.StatusUnauthorized)
	try("10.0.0.5", own, http.StatusOK)
	try("10.0.0.5", victim, http.StatusUnauthorized)
	if w := try("10.0.0.6", victim, http.StatusOK); w == 0 {
		t.Fatal("logging in to the attacker's own account reset the victim's count")
	}
	try("10.0.0.5", nil, http.StatusBadRequest)
	try("10.0.0.5", nil, http.StatusBadRequest) // 5 failures from 10.0.0.5
	if w := try("10.0.0.5", own, http.StatusOK); w == 0 {
		t.Fatal("the per-client limit did not apply")
	}

	// Attempts in flight hold places: concurrent guesses cannot overshoot.
	now = now.Add(15 * time.Minute)
	var held []*attempt
	for i := range 3 {
		a, _ := g.admit("10.0.1."+string(rune('0'+i)), victim)
		if a == nil {
			t.Fatalf("attempt %d refused", i)
		}
		held = append(held, a)
	}
	if a, wait := g.admit("10.0.1.9", victim); a != nil || wait != time.Second {
		t.Fatalf("fourth attempt in flight: admitted %v wait %s, want refused for 1s", a != nil, wait)
	}
	for _, a := range held {
		g.done(a, http.StatusServiceUnavailable) // the auth service down: nothing counted
	}
	if w := try("10.0.1.9", victim, http.StatusOK); w != 0 {
		t.Fatal("503s were counted as failures")
	}
	// Accounts without failures or attempts in flight are not kept.
	if n := g.accounts.Len(); n != 0 {
		t.Fatalf("%d accounts tracked, want 0", n)
	}
}

// FuzzThrottleLoginNames: any body is read without panicking, and every
// name found is non-empty and trimmed as DRF trims it.
func FuzzThrottleLoginNames(f *testing.F) {
	f.Add(mediaJSON, []byte(`{"email":"alice@example.com","email":"x","username":1e2}`))
	f.Add(mediaForm, []byte("email=a%zz&email=+b+&username=caf\xe9;x"))
	f.Fuzz(func(t *testing.T, mt string, body []byte) {
		for _, name := range loginNames(mt, body, defaultLoginFields) {
			if name == "" || strings.TrimFunc(name, pythonSpace) != name {
				t.Fatalf("name %q from %q", name, body)
			}
			_ = foldLoginName(name)
		}
	})
}

// TestThrottleAccountTableOverflow: what overflowing throttle.accounts_size
// buys an attacker. Successful logins of other users never push a locked
// account out; only failures (or attempts in flight) for accounts_size other
// names do, each of them a failure counted against its client address.
func TestThrottleAccountTableOverflow(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := throttleGuard(t, models.CompiledThrottle{
		AccountLimit: models.Limit{N: 2, Per: 15 * time.Minute},
		ClientLimit:  models.Limit{N: 100, Per: 15 * time.Minute},
		Throttle:     models.Throttle{AccountsSize: 3},
	})
	g.now = func() time.Time { return now }
	try := func(client, name string, status int) bool {
		t.Helper()
		a, _ := g.admit(client, []accountKey{g.key(name)})
		if a == nil {
			return false
		}
		g.done(a, status)
		return true
	}
	try("10.0.0.1", "victim", http.StatusUnauthorized)
	try("10.0.0.1", "victim", http.StatusUnauthorized)
	for i := range 50 { // an office logging in: the table does not move
		try("10.0.0.2", "user"+strconv.Itoa(i), http.StatusOK)
	}
	if try("10.0.0.3", "victim", http.StatusOK) {
		t.Fatal("successful logins of other users evicted the locked account")
	}
	try("10.0.0.1", "other1", http.StatusUnauthorized)
	try("10.0.0.1", "other2", http.StatusUnauthorized)
	if try("10.0.0.3", "victim", http.StatusOK) {
		t.Fatal("evicted before the table was full")
	}
	// Every attempt on the victim (refused or not) made it the most recent
	// entry: pushing it out takes accounts_size failures for new names
	// after the last attempt on it.
	try("10.0.0.1", "other3", http.StatusUnauthorized)
	try("10.0.0.1", "other4", http.StatusUnauthorized)
	if _, ok := g.accounts.Peek(g.key("victim")); !ok {
		t.Fatal("victim pushed out by fewer than accounts_size failures after its last attempt")
	}
	try("10.0.0.1", "other5", http.StatusUnauthorized)
	if !try("10.0.0.3", "victim", http.StatusOK) {
		t.Fatal("accounts_size failures for other names did not push the victim out (README says they do)")
	}
}
