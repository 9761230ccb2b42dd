package tests

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"jwtgate/handlers"
	"jwtgate/handlers/keymat"
	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// rotateLifetime is the identity token lifetime of the rotation tests.
const rotateLifetime = 2 * time.Second

// keysEnv is a gateway with the identity token on, a user's access token,
// and the settings file `jwtgate keys` runs with.
type keysEnv struct {
	gw      *gateway
	access  string
	keyFile string
	config  string // settings file for the CLI: the same identity_token
	alg     string
	clock   *clock
	yaml    string // the gateway's settings, placeholders filled in
}

func newKeysEnv(t *testing.T, alg string, opt handlers.Options) *keysEnv {
	t.Helper()
	up := startUpstream(t)
	fa := fakeauth.Start(t, fakeauth.Options{})
	u := fa.AddUser(fakeauth.User{Email: "ann@example.com", Username: "ann", Password: "pw", IsActive: true})
	access, _ := fa.IssuePair(u.ID)
	dir := t.TempDir()
	e := &keysEnv{access: access, keyFile: filepath.Join(dir, "identity.pem"), config: filepath.Join(dir, "keys.yaml"), alg: alg, clock: newClock()}
	yaml := strings.Replace(fill(idTokenRoutes, "ALG", alg, "KEY", e.keyFile), "  key_file:", "  lifetime: "+rotateLifetime.String()+"\n  key_file:", 1)
	opt.Now = e.clock.Now
	e.gw = startGatewayOpts(t, yaml, fa.URL(), up.URL, opt)
	e.yaml = fill(yaml, "AUTH", fa.URL(), "UPSTREAM", up.URL, "DB", e.gw.DBDSN)
	cli := fmt.Sprintf("identity_token: {enabled: true, algorithm: %s, key_file: %q, lifetime: %s}\n", alg, e.keyFile, rotateLifetime)
	if err := os.WriteFile(e.config, []byte(cli), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// mint returns the X-User-Token the upstream got for one request, and its kid.
func (e *keysEnv) mint(t testing.TB) (token, kid string) {
	t.Helper()
	r := do(t, nil, http.MethodGet, e.gw.URL+"/api/billing/x", e.access, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	toks := identityHeaders(r.echo(t).Headers)["x-user-token"]
	if len(toks) != 1 {
		t.Fatalf("upstream X-User-Token %q", toks)
	}
	return toks[0], tokenKid(t, toks[0])
}

// tokenKid is a JWT's kid header.
func tokenKid(t testing.TB, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("identity token: %v", err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

// jwksKids are the kids /.well-known/jwks.json lists, in order.
func jwksKids(t testing.TB, gatewayURL string) []string {
	t.Helper()
	r := get(t, gatewayURL+"/.well-known/jwks.json", "")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &set); r.Status != http.StatusOK || err != nil {
		t.Fatalf("jwks: %d %s %v", r.Status, r.Body, err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// upstreamVerifier is what an upstream runs: a keyfunc JWKS client of the
// gateway's JWKS that refetches it when a token carries an unknown kid.
func upstreamVerifier(t testing.TB, gatewayURL string) keyfunc.Keyfunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	strict := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{gatewayURL + "/.well-known/jwks.json"}, keyfunc.Override{
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1), NoErrorReturnFirstHTTPReq: &strict, HTTPTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("keyfunc: %v", err)
	}
	return kf
}

// verifyIdentity checks an identity token as an upstream does, at time at.
func verifyIdentity(kf keyfunc.Keyfunc, token, alg string, at time.Time) error {
	_, err := jwt.Parse(token, kf.Keyfunc, jwt.WithValidMethods([]string{alg}), jwt.WithAudience("billing"),
		jwt.WithIssuer("jwtgate"), jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return at }))
	return err
}

// rotation is what `jwtgate keys rotate` printed.
type rotation struct{ newKid, retiredKid string }

var rotatedKid = regexp.MustCompile(`(?m)^  (new|retired) kid: +(\S+)`)

// keysRotate runs `jwtgate keys rotate --config config` (with --force when
// force) with the built binary.
func keysRotate(t testing.TB, config string, force bool) (rotation, string, error) {
	t.Helper()
	args := []string{"keys", "rotate", "--config", config}
	if force {
		args = append(args, "--force")
	}
	var out bytes.Buffer
	cmd := exec.Command(gatewayBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var r rotation
	for _, m := range rotatedKid.FindAllStringSubmatch(out.String(), -1) {
		if m[1] == "new" {
			r.newKid = m[2]
		} else {
			r.retiredKid = m[2]
		}
	}
	if err == nil && (r.newKid == "" || r.retiredKid == "") {
		t.Fatalf("keys rotate printed no kids:\n%s", out.String())
	}
	return r, out.String(), err
}

// A token minted before `jwtgate keys rotate` still verifies afterwards
// against the served JWKS; the running gateway (no SIGHUP, no restart)
// signs new tokens with the new key within a bounded wait, lists both keys
// (current first) while the old one's tokens may be valid, and drops the
// old one after lifetime + RetiredKeyMargin: a token of the old key then no
// longer verifies, one of the new key does.
func TestIdentityKeyRotationFollowedByRunningGateway(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			e := newKeysEnv(t, alg, handlers.Options{})
			running := upstreamVerifier(t, e.gw.URL) // an upstream that was up before the rotation
			oldTok, oldKid := e.mint(t)
			oldAt := e.clock.Now()
			if err := verifyIdentity(running, oldTok, alg, oldAt); err != nil {
				t.Fatalf("before rotation: %v", err)
			}

			rot, out, err := keysRotate(t, e.config, false)
			if err != nil {
				t.Fatalf("keys rotate: %v\n%s", err, out)
			}
			if rot.retiredKid != oldKid || rot.newKid == oldKid {
				t.Fatalf("keys rotate: new %s retired %s; the gateway signed with %s", rot.newKid, rot.retiredKid, oldKid)
			}
			var newTok string
			eventually(t, 5*time.Second, func() string {
				var kid string
				newTok, kid = e.mint(t)
				if kid != rot.newKid {
					return "the gateway still signs with kid " + kid
				}
				return ""
			})
			if got := jwksKids(t, e.gw.URL); !slices.Equal(got, []string{rot.newKid, oldKid}) {
				t.Fatalf("JWKS after rotation lists %v, want [new %s, retired %s]", got, rot.newKid, oldKid)
			}
			newAt := e.clock.Now()
			for name, kf := range map[string]keyfunc.Keyfunc{"running upstream": running, "new upstream": upstreamVerifier(t, e.gw.URL)} {
				if err := verifyIdentity(kf, oldTok, alg, oldAt); err != nil {
					t.Errorf("%s: the token minted before the rotation: %v", name, err)
				}
				if err := verifyIdentity(kf, newTok, alg, newAt); err != nil {
					t.Errorf("%s: the token minted after the rotation: %v", name, err)
				}
			}

			// Just before the window ends the old key is still served; after it, not.
			rotatedAt := time.Now() // the Retired-At the CLI wrote is at most this
			window := rotateLifetime + handlers.RetiredKeyMargin
			e.clock.Advance(rotatedAt.Add(window).Sub(e.clock.Now()) - 3*time.Second)
			if got := jwksKids(t, e.gw.URL); len(got) != 2 {
				t.Fatalf("JWKS 3s before the retired key's end lists %v, want both keys", got)
			}
			e.clock.Advance(4 * time.Second)
			if got := jwksKids(t, e.gw.URL); !slices.Equal(got, []string{rot.newKid}) {
				t.Fatalf("JWKS after lifetime + margin lists %v, want only the new key %s", got, rot.newKid)
			}
			fresh := upstreamVerifier(t, e.gw.URL)
			if err := verifyIdentity(fresh, oldTok, alg, oldAt); err == nil {
				t.Fatal("a token of the retired key still verifies after its key left the JWKS")
			}
			if err := verifyIdentity(fresh, newTok, alg, newAt); err != nil {
				t.Fatalf("a token of the current key: %v", err)
			}
		})
	}
}

// With the file watch off, a settings reload (what SIGHUP runs) is what
// makes the gateway pick the rotated key up: before it the old key signs,
// after it the new one, and both are published.
func TestIdentityKeyRotationPickedUpOnReload(t *testing.T) {
	e := newKeysEnv(t, "ES256", handlers.Options{NoKeyFileWatch: true})
	_, oldKid := e.mint(t)
	rot, out, err := keysRotate(t, e.config, false)
	if err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	time.Sleep(keyPollAndSettle) // bounded: longer than the watch would take
	if _, kid := e.mint(t); kid != oldKid {
		t.Fatalf("with the watch off the gateway switched to %s before a reload", kid)
	}
	load := func() (models.Settings, error) {
		return models.LoadSettings(strings.NewReader(e.yaml), func(string) string { return "" })
	}
	if err := e.gw.GW.Reload(t.Context(), load); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, kid := e.mint(t); kid != rot.newKid {
		t.Fatalf("after the reload the gateway signs with %s, want %s", kid, rot.newKid)
	}
	if got := jwksKids(t, e.gw.URL); !slices.Equal(got, []string{rot.newKid, oldKid}) {
		t.Fatalf("JWKS after the reload lists %v", got)
	}
}

// keyPollAndSettle is more than the gateway's key poll interval (2s).
const keyPollAndSettle = 2500 * time.Millisecond

// Garbage, or half a key, written into key_file never replaces the working
// key: the gateway logs an error naming the file and goes on signing with
// the key its JWKS serves; a valid key written afterwards is taken.
func TestIdentityKeyFileGarbageKeepsWorkingKey(t *testing.T) {
	e := newKeysEnv(t, "ES256", handlers.Options{})
	_, kid := e.mint(t)
	good, err := os.ReadFile(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.pem")
	if _, _, err := keymat.LoadOrCreatePrivate(other, models.AlgES256); err != nil {
		t.Fatal(err)
	}
	otherPEM, _ := os.ReadFile(other)
	for _, tc := range []struct{ name, content string }{
		{"garbage", "not a key\n"},
		{"half a key", string(otherPEM[:len(otherPEM)/2])},
		{"a public key", pemPublic(t, other)},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(e.gw.Logs.String(), "cannot be used")
			if err := os.WriteFile(e.keyFile, []byte(tc.content), 0o600); err != nil { // in place, not atomic
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, func() string {
				if strings.Count(e.gw.Logs.String(), "cannot be used") == before {
					return "no error logged for the broken key file"
				}
				return ""
			})
			if logs := e.gw.Logs.String(); !strings.Contains(logs, e.keyFile) || !strings.Contains(logs, "level=ERROR") {
				t.Fatalf("the error does not name %s:\n%s", e.keyFile, logs)
			}
			tok, got := e.mint(t)
			if got != kid {
				t.Fatalf("after %s the gateway signs with %s, want the working %s", tc.name, got, kid)
			}
			if err := verifyIdentity(upstreamVerifier(t, e.gw.URL), tok, "ES256", e.clock.Now()); err != nil {
				t.Fatalf("a token minted after %s does not verify with the served JWKS: %v", tc.name, err)
			}
		})
	}
	// The original key back, then another valid key: taken.
	if err := os.WriteFile(e.keyFile, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.keyFile, otherPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if _, got := e.mint(t); got == kid {
			return "a valid new key was not taken"
		}
		return ""
	})
}

// pemPublic is the public key of the private key file path, as PEM.
func pemPublic(t testing.TB, path string) string {
	t.Helper()
	k, err := keymat.ReadPrivate(path, models.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Two `jwtgate keys rotate` at once. Without --force exactly one rotates:
// the other finds the key just retired still published and refuses, so
// key_file holds the new key and .previous the one that was current. With
// --force both rotate, one after the other (the lock): key_file is the
// second's new key, .previous the first's, and the key current before is
// gone only because it was rotated twice. Both files always parse.
func TestIdentityKeyConcurrentRotations(t *testing.T) {
	e := newKeysEnv(t, "ES256", handlers.Options{NoKeyFileWatch: true})
	it := models.IdentityToken{Enabled: true, Algorithm: models.AlgES256, KeyFile: e.keyFile, Lifetime: rotateLifetime}
	kidsNow := func() (cur, prev string) {
		t.Helper()
		cur, err := handlers.IdentityKeyID(it)
		if err != nil {
			t.Fatalf("key_file after concurrent rotations: %v", err)
		}
		p, err := handlers.CheckRetiredKey(it)
		if err != nil || !p.Present {
			t.Fatalf(".previous after concurrent rotations: %+v %v", p, err)
		}
		return cur, p.Kid
	}
	concurrently := func(force bool) (rots []rotation, refused []string) {
		var mu sync.Mutex
		parallel(2, func(int) {
			r, out, err := keysRotate(t, e.config, force)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused = append(refused, out)
				return
			}
			rots = append(rots, r)
		})
		return rots, refused
	}

	start, err := handlers.IdentityKeyID(it)
	if err != nil {
		t.Fatal(err)
	}
	rots, refused := concurrently(false)
	if len(rots) != 1 || len(refused) != 1 || !strings.Contains(refused[0], "still published") || !strings.Contains(refused[0], "--force") {
		t.Fatalf("two rotations without --force: %d rotated, refusals %q; want one of each", len(rots), refused)
	}
	if cur, prev := kidsNow(); cur != rots[0].newKid || prev != start || rots[0].retiredKid != start {
		t.Fatalf("key_file %s .previous %s; want the new %s and the started-with %s", cur, prev, rots[0].newKid, start)
	}

	for round := range 5 {
		before, _ := kidsNow()
		rots, refused := concurrently(true)
		if len(rots) != 2 {
			t.Fatalf("round %d: two forced rotations: %d rotated, refusals %q", round, len(rots), refused)
		}
		cur, prev := kidsNow()
		first, second := rots[0], rots[1]
		if second.retiredKid != first.newKid {
			first, second = second, first
		}
		if first.retiredKid != before || second.retiredKid != first.newKid || cur != second.newKid || prev != first.newKid {
			t.Fatalf("round %d: started with %s; rotations %+v %+v; now key_file %s .previous %s: a rotation was lost or interleaved",
				round, before, first, second, cur, prev)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(e.keyFile), ".jwtgate-key-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary key files left behind: %v", leftovers)
	}
}

// Replicas sharing the key file (two processes, one directory) both sign
// with the rotated key within a bounded wait, with no signal.
func TestIdentityKeyRotationReachesEveryProcess(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	u := fa.AddUser(fakeauth.User{Email: "ann@example.com", Username: "ann", Password: "pw", IsActive: true})
	access, _ := fa.IssuePair(u.ID)
	up := startUpstream(t)
	keyFile := filepath.Join(t.TempDir(), "identity.pem")
	yaml := fill(idTokenRoutes, "ALG", "ES256", "KEY", keyFile)
	db := filepath.Join(t.TempDir(), "shared.db")
	a := startProcess(t, yaml, fa.URL(), up.URL, db)
	b := startProcess(t, yaml, fa.URL(), up.URL, db)
	kidOf := func(p *process) string {
		r := do(t, nil, http.MethodGet, p.URL+"/api/billing/x", access, nil)
		toks := identityHeaders(r.echo(t).Headers)["x-user-token"]
		if r.Status != http.StatusOK || len(toks) != 1 {
			t.Fatalf("status %d, X-User-Token %q", r.Status, toks)
		}
		return tokenKid(t, toks[0])
	}
	before := kidOf(a)
	if kidOf(b) != before {
		t.Fatal("the replicas sign with different keys before the rotation")
	}
	rot, out, err := keysRotate(t, a.config, false)
	if err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	rotated := time.Now()
	for name, p := range map[string]*process{"A": a, "B": b} {
		eventually(t, 5*time.Second, func() string {
			if kid := kidOf(p); kid != rot.newKid {
				return "replica " + name + " still signs with " + kid
			}
			return ""
		})
		t.Logf("replica %s signs with the new key %s after the rotation", name, time.Since(rotated).Round(time.Millisecond))
		if got := jwksKids(t, p.URL); !slices.Equal(got, []string{rot.newKid, before}) {
			t.Fatalf("replica %s JWKS %v, want [%s %s]", name, got, rot.newKid, before)
		}
	}
}
