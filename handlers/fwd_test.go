package handlers

import (
	"errors"
	"net/http"
	"testing"

	"jwtgate/models"
)

// fwdHeaderOf builds a header from name, value pairs kept verbatim.
func fwdHeaderOf(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

func TestFwdCredentialsExtract(t *testing.T) {
	bearer := credentials{header: "Authorization", types: []string{"Bearer", "JWT"}}
	custom := credentials{header: "X-Auth-Token"}
	tests := []struct {
		name    string
		cr      credentials
		h       http.Header
		raw     string
		present bool
		err     error // errAmbiguousCredential, models.ErrTokenInvalid or nil
	}{
		{"bearer", bearer, fwdHeaderOf("Authorization", "Bearer a.b.c"), "a.b.c", true, nil},
		{"lower-case scheme", bearer, fwdHeaderOf("Authorization", "bearer a.b.c"), "a.b.c", true, nil},
		{"second type", bearer, fwdHeaderOf("Authorization", "JWT a.b.c"), "a.b.c", true, nil},
		{"surrounding whitespace", bearer, fwdHeaderOf("Authorization", " \tBearer a.b.c\t "), "a.b.c", true, nil},
		{"none", bearer, http.Header{}, "", false, nil},
		{"empty", bearer, fwdHeaderOf("Authorization", ""), "", false, nil},
		{"basic", bearer, fwdHeaderOf("Authorization", "Basic YTpi"), "", false, nil},
		{"digest list", bearer, fwdHeaderOf("Authorization", `Digest username="a", realm="b"`), "", false, nil},
		{"scheme glued", bearer, fwdHeaderOf("Authorization", "Bearera.b.c"), "", false, nil},
		{"Bearer alone", bearer, fwdHeaderOf("Authorization", "Bearer"), "", true, models.ErrTokenInvalid},
		{"tab", bearer, fwdHeaderOf("Authorization", "Bearer\ta.b.c"), "", true, models.ErrTokenInvalid},
		{"two spaces", bearer, fwdHeaderOf("Authorization", "Bearer  a.b.c"), "", true, models.ErrTokenInvalid},
		{"space then tab", bearer, fwdHeaderOf("Authorization", "Bearer \ta.b.c"), "", true, models.ErrTokenInvalid},
		{"three words", bearer, fwdHeaderOf("Authorization", "Bearer a.b.c d"), "", true, models.ErrTokenInvalid},
		{"two headers", bearer, fwdHeaderOf("Authorization", "Bearer a.b.c", "Authorization", "Bearer d.e.f"), "", true, errAmbiguousCredential},
		{"two headers, one empty", bearer, fwdHeaderOf("Authorization", "", "Authorization", "Bearer d.e.f"), "", true, errAmbiguousCredential},
		{"comma list", bearer, fwdHeaderOf("Authorization", "Bearer a.b.c, Bearer d.e.f"), "", true, errAmbiguousCredential},
		{"comma list of JWT", bearer, fwdHeaderOf("Authorization", "Basic x,jwt d.e.f"), "", true, errAmbiguousCredential},
		{"custom header", custom, fwdHeaderOf("X-Auth-Token", "a.b.c"), "a.b.c", true, nil},
		{"custom header, underscore alias too", custom, fwdHeaderOf("X-Auth-Token", "a.b.c", "X_Auth_Token", "d.e.f"), "", true, errAmbiguousCredential},
		{"custom header, dot alias too", custom, fwdHeaderOf("X.auth.token", "d.e.f", "X-Auth-Token", "a.b.c"), "", true, errAmbiguousCredential},
		{"custom header, alias alone", custom, fwdHeaderOf("X_Auth_Token", "a.b.c"), "", true, errAmbiguousCredential},
		{"custom header, comma list", custom, fwdHeaderOf("X-Auth-Token", "a.b.c,d.e.f"), "", true, errAmbiguousCredential},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, present, err := tt.cr.extract(tt.h)
			if raw != tt.raw || present != tt.present || (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("extract = %q, %v, %v; want %q, %v, %v", raw, present, err, tt.raw, tt.present, tt.err)
			}
		})
	}
}

func TestFwdPath(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"/api/x?y=1", "/api/x"},
		{"/api/%2e%2e/x", "/api/../x"},
		{"//api/x", "//api/x"},
		{"", ""},
		{"*", ""},
		{"api/x", ""},
		{"http://h/api/x", ""},
		{"/api/x#f", ""},
		{"/api/ x", ""},
		{"/api/\x00x", ""},
		{"/api/\x7fx", ""},
		{"/api/%zz", ""},
	}
	for _, tt := range tests {
		got, err := fwdPath(fwdTarget{uri: tt.uri, header: "X-Original-URI"})
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("fwdPath(%q) = %q, %v; want %q", tt.uri, got, err, tt.want)
		}
	}
}
