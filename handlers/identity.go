package handlers

import (
	"net/http"
	"net/textproto"
	"strconv"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// identity writes the caller's identity headers and removes every
// client-supplied header in their namespace.
type identity struct {
	norm                                  string // prefix lower-cased, '_' and '.' as '-'
	id, email, username, staff, superuser string // canonical header names
}

func newIdentity(prefix string) identity {
	name := func(s string) string { return textproto.CanonicalMIMEHeaderKey(prefix + s) }
	return identity{
		norm:      normalizeHeaderName(prefix),
		id:        name("Id"),
		email:     name("Email"),
		username:  name("Username"),
		staff:     name("Is-Staff"),
		superuser: name("Is-Superuser"),
	}
}

// normalizeHeaderName folds a header name the way an upstream could read it:
// any case, and '_' or '.' where '-' stands (WSGI/CGI turn X_User_Id and
// X-User-Id into one variable).
func normalizeHeaderName(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = foldHeaderByte(c)
	}
	return string(b)
}

func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_' || c == '.':
		return '-'
	}
	return c
}

// spoofed reports whether a header name falls in the identity namespace in
// any spelling, without allocating.
func (idn identity) spoofed(name string) bool {
	if len(name) < len(idn.norm) {
		return false
	}
	for i := 0; i < len(idn.norm); i++ {
		if foldHeaderByte(name[i]) != idn.norm[i] {
			return false
		}
	}
	return true
}

// strip removes every header in the identity namespace.
func (idn identity) strip(h http.Header) {
	for k := range h {
		if idn.spoofed(k) {
			delete(h, k)
		}
	}
}

// identityValues are a user's identity header values, built once per
// cached user record. Each slice has cap == len, so an append elsewhere
// copies instead of writing into the shared array.
type identityValues struct {
	id, email, username, staff, superuser []string
}

// values builds a user's identity header values (authn.Authenticator.Derive).
func (idn identity) values(u *models.User) any {
	one := func(s string) []string { return []string{s}[:1:1] }
	return &identityValues{
		id: one(u.ID), email: one(u.Email), username: one(u.Username),
		staff: one(strconv.FormatBool(u.IsStaff)), superuser: one(strconv.FormatBool(u.IsSuperuser)),
	}
}

// set writes the caller's identity.
func (idn identity) set(h http.Header, p *authn.Principal) {
	v, ok := p.Derived.(*identityValues)
	if !ok {
		v = idn.values(p.User).(*identityValues)
	}
	h[idn.id] = v.id
	h[idn.email] = v.email
	h[idn.username] = v.username
	h[idn.staff] = v.staff
	h[idn.superuser] = v.superuser
}
