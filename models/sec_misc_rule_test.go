package models

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// The rules from the out-of-memory report and variants: every one is
// either refused when it compiles or denied with ErrRuleBudget, and the
// process's heap stays small while they run.
func TestSecMiscRuleRefusedAtCompile(t *testing.T) {
	for _, src := range []string{
		// the report: string concatenation in a loop
		`reduce(1..100, #acc + #acc, "x") != ""`,
		`len(reduce(1..64, #acc + #acc + #acc, user.email)) > 0`,
		`repeat("x", 1000000) != ""`,
		`repeat(user.email, 999999) == ""`,
		`"x" | repeat(100) != ""`,
		`join(map(1..99999, "xxxxxxxxxx"), "") != ""`,
		`join(["a", "b"], request.headers["x"]) != ""`,
		`len(map(1..1000, map(1..1000, #))) > 0`,
		`len(map(user.services, # + # + #)) > 0`,
		`replace(request.headers["x"], "", request.headers["x"]) == ""`,
		`len(split(request.headers["x"], "")) > 0`,
		`len(splitAfter(request.headers["x"], "")) > 0`,
		`toJSON(user) != ""`,
		`fromJSON(request.headers["x"]) != nil`,
		`toBase64(toBase64(user.email)) != ""`,
		`len(concat([1], [2])) == 2`,
		`len(flatten([[1]])) == 1`,
		`len(groupBy(1..10, #)) > 0`,
		`len(sortBy(1..10, #)) > 0`,
		`len(toPairs(user)) > 0`,
		`len(fromPairs([["a", 1]])) > 0`,
		// ranges beyond the budget without any input
		`len(1..1000000000) > 0`,
		`all(1..1e9, # > 0)`,
		`any(1..1000, any(1..1000, # < 0))`,
		`count(1..200000, true) > 0`,
		// a chain of + doubling a constant past the string bound
		`let a = "xxxxxxxxxxxxxxxx"; let b = a+a; let c = b+b; let d = c+c; let e = d+d; let f = e+e; let g = f+f; let h = g+g; let i = h+h; let j = i+i; let k = j+j; let l = k+k; let m = l+l; len(m + m) > 0`,
		`all(1..1000, all(1..1000, string(#) != ""))`,
	} {
		if _, err := CompileRule(src); err == nil {
			t.Errorf("%s: compiled; want it refused", src)
		}
	}
}

// Rules whose cost depends on the request are bounded at run time: an
// error wrapping ErrRuleBudget, never a crash, and a small heap.
func TestSecMiscRuleBoundedAtRunTime(t *testing.T) {
	big := strings.Repeat("x", 60<<10) // under the 64 KiB header limit
	for _, src := range []string{
		`request.headers["x"] + request.headers["x"] != ""`,
		`let h = request.headers["x"]; let a = h + h; let b = a + a; let c = b + b; len(c + c) > 0`,
		`user.email + user.email + user.email == ""`,
		`1..int(request.headers["n"]) != nil`,
		`all(1..int(request.headers["n"]), # > 0)`,
		`any(1..int(request.headers["n"]), any(1..int(request.headers["n"]), # < 0))`,
		`string(1..int(request.headers["n"])) != ""`,
	} {
		rule, err := CompileRule(src)
		if err != nil {
			t.Errorf("%s: does not compile: %v", src, err)
			continue
		}
		env := &RuleEnv{
			User:    map[string]any{"email": big},
			Request: RuleRequest{Method: "GET", Path: "/", Headers: map[string]string{"x": big, "n": "1000000000"}},
		}
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ok, err := rule.Allows(env)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if ok || err == nil {
			t.Errorf("%s: allowed %t, err %v; want a denial with an error", src, ok, err)
		} else if !errors.Is(err, ErrRuleBudget) && !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: %v; want ErrRuleBudget", src, err)
		}
		if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 64<<20 {
			t.Errorf("%s: heap grew by %d MiB", src, grew>>20)
		}
	}
}

// Ordinary rules, including + on strings and numbers and the allowed
// builtins, behave as before.
func TestSecMiscRuleOrdinaryRulesStillWork(t *testing.T) {
	env := &RuleEnv{
		User: map[string]any{"services": []any{"billing", "reports"}, "is_staff": true, "tenant": "acme",
			"level": float64(3), "id": "7"},
		Claims:  map[string]any{"scope": "orders"},
		Request: RuleRequest{Method: "GET", Path: "/api/x", Headers: map[string]string{"x-tenant": "t-acme"}},
	}
	for src, want := range map[string]bool{
		`"billing" in user.services || user.is_staff`:                        true,
		`request.headers["x-tenant"] == "t-" + user.tenant`:                  true,
		`"t-" + user.tenant + "-" == "t-acme-"`:                              true,
		`user.level + 1 == 4`:                                                true,
		`1 + 2 == 3`:                                                         true,
		`string(user.id) == "7" && string(1) == "1"`:                         true,
		`any(user.services, hasPrefix(#, "rep")) && len(user.services) == 2`: true,
		`lower(upper(user.tenant)) == user.tenant && trim(" a ") == "a"`:     true,
		`count(1..10, # > 5) == 5`:                                           true,
		`user.is_superuser == true`:                                          false,
		`claims.scope == "orders" && request.method in ["GET", "HEAD"]`:      true,
	} {
		rule, err := CompileRule(src)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if got, err := rule.Allows(env); err != nil || got != want {
			t.Errorf("%s: %t, %v; want %t", src, got, err, want)
		}
	}
	rule, err := CompileRule(`string(user.services) != ""`) // compiles; refused when it runs on a collection
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := rule.Allows(env); ok || err == nil {
		t.Fatalf("string() of a list: %t, %v; want a denial", ok, err)
	}
}

// check and serve refuse such a rule naming routes[N].allow.
func TestSecMiscRuleSettingsNameTheKey(t *testing.T) {
	for i, src := range []string{`reduce(1..100, #acc + #acc, "x") != ""`, `repeat("x", 9) != ""`, `len(1..1e9) > 0`} {
		yaml := fmt.Sprintf("routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n  - path: /b/\n    upstream: http://127.0.0.1:9\n    allow: '%s'\n", src)
		_, err := LoadSettings(strings.NewReader(yaml), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "routes[1].allow") {
			t.Errorf("%d %s: %v; want an error naming routes[1].allow", i, src, err)
		}
	}
}
