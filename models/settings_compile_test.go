package models_test

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"jwtgate/models"
)

// settingsCompileDoc has every value Compile normalises or parses: unnamed
// routes, lower-case methods, unset auth modes, allow rules, bare and
// IPv4-mapped proxy addresses, an unmasked CIDR and rates in both spellings.
const settingsCompileDoc = `
trusted_proxies: ["10.1.2.3/8", " 127.0.0.2 ", "::ffff:192.168.1.1", "fd00::1", "fd00:1::/64"]
throttle:
  failures_per_account: "3/hour"
  failures_per_client: "off"
  calls_home_per_client: "5/10s"
  login_rate: "10/minute"
routes:
  - path: /
    upstream: http://127.0.0.1:9
    auth: none
    methods: [get, Head]
  - path: /api/v1/
    upstream: http://127.0.0.1:9
    allow: 'user.is_staff'
  - path: /api/v1/billing/
    name: billing
    upstream: http://127.0.0.1:9
    auth: optional
    methods: [post]
    identity_headers: {fields: [services]}
`

// settingsParse parses doc, which must decode.
func settingsParse(t *testing.T, doc string) models.Settings {
	t.Helper()
	s, probs, ok := models.ParseSettings([]byte(doc), func(string) string { return "" })
	if !ok || len(probs) > 0 {
		t.Fatalf("parse: %v", models.Problems(probs))
	}
	return s
}

// Validate, Warnings and Compile leave the settings exactly as they were,
// valid or not: nothing is filled in, upper-cased or parsed into them.
func TestSettingsValidateIsPure(t *testing.T) {
	invalid := settingsCompileDoc + `
  - path: /x/
    upstream: http://127.0.0.1:9
    methods: [delete]
    auth: nope
    allow: 'user.'
`
	for name, doc := range map[string]string{"valid": settingsCompileDoc, "invalid": invalid} {
		t.Run(name, func(t *testing.T) {
			s, before := settingsParse(t, doc), settingsParse(t, doc)
			probs := s.Validate()
			if (len(probs) == 0) != (name == "valid") {
				t.Fatalf("Validate: %v", models.Problems(probs))
			}
			_ = s.Warnings()
			rt, _ := models.Compile(s)
			if !reflect.DeepEqual(s, before) {
				t.Fatalf("settings changed:\n%+v\nwant\n%+v", s, before)
			}
			if s.Routes[0].Name != "" || s.Routes[0].Methods[0] != "get" || s.Routes[1].Auth != "" {
				t.Fatalf("routes normalised in place: %+v", s.Routes)
			}
			if rt != nil {
				// The runtime form shares no slice Compile rewrote with the settings.
				rt.Routes[0].Methods[0] = "PATCH"
				if s.Routes[0].Methods[0] != "get" {
					t.Fatal("runtime methods alias the settings' methods")
				}
			}
		})
	}
}

func TestSettingsCompileRoutes(t *testing.T) {
	rt := settingsCompile(t, settingsParse(t, settingsCompileDoc))
	want := []struct {
		name, auth string
		methods    []string
		rule       bool
	}{
		{"root", models.AuthNone, []string{"GET", "HEAD"}, false},
		{"api/v1", models.AuthRequired, nil, true},
		{"billing", models.AuthOptional, []string{"POST"}, false},
	}
	if len(rt.Routes) != len(want) {
		t.Fatalf("%d routes, want %d", len(rt.Routes), len(want))
	}
	for i, w := range want {
		r := rt.Routes[i]
		if r.Name != w.name || r.Auth != w.auth || !slices.Equal(r.Methods, w.methods) || (r.Rule != nil) != w.rule {
			t.Errorf("routes[%d] = name %q auth %q methods %q rule %v; want %q %q %q rule %v",
				i, r.Name, r.Auth, r.Methods, r.Rule != nil, w.name, w.auth, w.methods, w.rule)
		}
	}
	staff := models.RuleEnv{User: map[string]any{"is_staff": true}}
	other := models.RuleEnv{User: map[string]any{"is_staff": false}}
	if ok, err := rt.Routes[1].Rule.Allows(&staff); err != nil || !ok {
		t.Errorf("compiled rule refuses staff: %v %v", ok, err)
	}
	if ok, err := rt.Routes[1].Rule.Allows(&other); err != nil || ok {
		t.Errorf("compiled rule allows non-staff: %v %v", ok, err)
	}
	if got := rt.Routes[2].IdentityHeaders.Fields; !slices.Equal(got, []string{"services"}) {
		t.Errorf("identity fields %q", got)
	}
}

func TestSettingsCompileParsed(t *testing.T) {
	rt := settingsCompile(t, settingsParse(t, settingsCompileDoc))
	nets := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("fd00::1/128"), netip.MustParsePrefix("fd00:1::/64"),
	}
	if !slices.Equal(rt.TrustedNets, nets) {
		t.Errorf("trusted nets %v, want %v", rt.TrustedNets, nets)
	}
	th := rt.Throttle
	if th.AccountLimit != (models.Limit{N: 3, Per: time.Hour}) || !th.ClientLimit.Off() ||
		th.CallsHome != (models.Limit{N: 5, Per: 10 * time.Second}) || th.LoginEvery != 6*time.Second {
		t.Errorf("throttle compiled as %+v", th)
	}
	if th.LoginBurst != 5 || th.CacheSize != 10000 {
		t.Errorf("throttle sizes not carried over: %+v", th.Throttle)
	}
	if rt.Settings.Throttle != th.Throttle || len(rt.Settings.Routes) != 3 {
		t.Error("Runtime.Settings is not the settings compiled")
	}
}

// Compile refuses what Validate refuses, with the same problems, and
// builds nothing from it.
func TestSettingsCompileInvalid(t *testing.T) {
	for _, doc := range []string{
		"trusted_proxies: [10.0.0.0/33]",
		"throttle: {login_rate: 10/fortnight}",
		"routes:\n  - path: /a/\n    upstream: http://127.0.0.1:9\n    allow: 'user.'\n",
		"routes:\n  - path: /a/\n    upstream: http://127.0.0.1:9\n  - path: /b/\n    name: a\n    upstream: http://127.0.0.1:9\n",
	} {
		s := settingsParse(t, doc)
		rt, probs := models.Compile(s)
		if rt != nil || len(probs) == 0 || !reflect.DeepEqual(probs, s.Validate()) {
			t.Errorf("%s: Compile = %v, %v; want nil and Validate's %v", doc, rt, probs, s.Validate())
		}
	}
}
