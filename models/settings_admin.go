package models

// Admin configures the admin API under /admin/.
type Admin struct {
	// Allow is an expression over the caller's mirrored user (the language
	// of routes[].allow) that must hold for /admin/ to answer; empty turns
	// the admin API off (404). Example: "user.is_superuser".
	Allow string `yaml:"allow"`
}

// validate checks that admin.allow compiles.
func (a Admin) validate(p *problemList) {
	if a.Allow == "" {
		return
	}
	if _, err := CompileRule(a.Allow); err != nil {
		p.add("admin.allow", "expression %q does not compile: %v", a.Allow, err)
	}
}

// compileAdmin compiles admin.allow; nil when it is empty.
func compileAdmin(p *problemList, a Admin) *Rule {
	if a.Allow == "" {
		return nil
	}
	rule, err := CompileRule(a.Allow)
	if err != nil {
		p.add("admin.allow", "expression %q does not compile: %v", a.Allow, err)
	}
	return rule
}
