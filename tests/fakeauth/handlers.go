package fakeauth

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// handle is the whole request pipeline: count, delay, injected failure, then Django's URL routing.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
	if r.Header.Get("X-Request-Id") == ProbeRequestID {
		s.probes.Add(1) // jwtgate's readiness probe is not a call home the tests count
	} else {
		s.count(r.URL.Path)
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			panic(http.ErrAbortHandler) // the client is gone; close without a response
		case <-stop:
			panic(http.ErrAbortHandler) // Stop: the service dies mid-request
		}
	}
	switch Failure(s.failure.Load()) {
	case Fail500:
		writeDjangoPage(w, http.StatusInternalServerError)
		return
	case FailFlapping:
		if s.flap.Add(1)%2 == 1 {
			writeDjangoPage(w, http.StatusInternalServerError)
			return
		}
	case FailHangup:
		panic(http.ErrAbortHandler) // net/http closes the connection and logs nothing
	}
	s.route(w, r)
}

// view is one DRF view: the handler for its allowed method plus what OPTIONS describes.
type view struct {
	name, description string
	allow             string // DRF's Allow header
	serve             func(w http.ResponseWriter, r *http.Request)
}

// lookup is Django's URL resolver for the fixed paths.
func (s *Server) lookup(path string) (view, bool) {
	switch path {
	case PathObtain:
		return s.tokenView("Token Obtain Pair", "Takes a set of user credentials and returns an access and refresh JSON web\ntoken pair to prove the authentication of those credentials.", s.obtain), true
	case PathRefresh:
		return s.tokenView("Token Refresh", "Takes a refresh type JSON web token and returns an access type JSON web\ntoken if the refresh token is valid.", s.refresh), true
	case PathVerify:
		return s.tokenView("Token Verify", "Takes a token and indicates if it is valid.  This view provides no\ninformation about a token's fitness for a particular use.", s.verify), true
	case PathBlacklist:
		return s.tokenView("Token Blacklist", "Takes a token and blacklists it. Must be used with the\n`rest_framework_simplejwt.token_blacklist` app installed.", s.blacklistToken), true
	case PathMe:
		return s.userView("User", func(caller User) (User, int, object) { return caller, http.StatusOK, nil }), true
	}
	// "/auth/users/<int:pk>/": Django's int converter is [0-9]+.
	if rest, ok := strings.CutPrefix(path, PathUsers); ok {
		if digits, ok := strings.CutSuffix(rest, "/"); ok && digits != "" && strings.Trim(digits, "0123456789") == "" {
			return s.userView("User Detail", func(caller User) (User, int, object) { return s.userByID(caller, digits) }), true
		}
	}
	return view{}, false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	v, ok := s.lookup(r.URL.Path)
	if !ok {
		// CommonMiddleware's APPEND_SLASH: a POST loses its body on the 301, and the client's GET
		// then meets "Method not allowed", as against a real Django service.
		if _, ok := s.lookup(r.URL.Path + "/"); ok && !strings.HasSuffix(r.URL.Path, "/") {
			loc := r.URL.Path + "/"
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", loc)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		writeDjangoPage(w, http.StatusNotFound)
		return
	}
	v.serve(w, r)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	writeJSON(w, http.StatusMethodNotAllowed, detail(`Method "`+r.Method+`" not allowed.`), allow)
}

func (v view) options(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, object{
		{"name", v.name},
		{"description", v.description},
		{"renders", []string{"application/json", "text/html"}},
		{"parses", []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}},
	}, v.allow)
}

// tokenView wraps a SimpleJWT TokenViewBase: POST only, no authentication (a stale Authorization
// header is ignored), request.data parsed by DRF's default parsers.
func (s *Server) tokenView(name, description string, post func(data any) (int, object)) view {
	const allow = "POST, OPTIONS"
	v := view{name: name, description: description, allow: allow}
	v.serve = func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
		case http.MethodOptions:
			v.options(w)
			return
		default:
			methodNotAllowed(w, r, allow)
			return
		}
		data, status, body, err := parseData(r)
		switch {
		case errors.Is(err, errTooBig):
			writeDjangoPage(w, http.StatusBadRequest)
			return
		case err != nil:
			panic(http.ErrAbortHandler) // the body could not be read: the client is gone
		case body != nil:
			writeJSON(w, status, body, allow)
			return
		}
		status, body = post(data)
		if status == http.StatusInternalServerError {
			writeDjangoPage(w, status) // an exception SimpleJWT does not handle
			return
		}
		writeJSON(w, status, body, allow)
	}
	return v
}

// obtain is TokenObtainPairView.
func (s *Server) obtain(data any) (int, object) {
	vals, errs := fields(data, s.opt.UsernameField, "password")
	if errs != nil {
		return http.StatusBadRequest, errs
	}
	login, password := vals[0], vals[1]
	s.mu.Lock()
	u := s.users[s.byLogin[login]]
	ok := u != nil && u.IsActive && u.Password != "" &&
		subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
	var id int64
	if ok {
		now := s.now()
		u.LastLogin = &now
		id = u.ID
	}
	s.mu.Unlock()
	if !ok {
		// DRF's own AuthenticationFailed, not SimpleJWT's: no "code" key.
		return http.StatusUnauthorized, detail("No active account found with the given credentials")
	}
	access, refresh := s.IssuePair(id)
	return http.StatusOK, object{{"refresh", refresh}, {"access", access}}
}

// refresh is TokenRefreshView (SimpleJWT 5.5).
func (s *Server) refresh(data any) (int, object) {
	vals, errs := fields(data, "refresh")
	if errs != nil {
		return http.StatusBadRequest, errs
	}
	claims, msg := s.checkToken(vals[0], TypeRefresh, true)
	if msg != "" {
		return http.StatusUnauthorized, tokenNotValid(msg)
	}
	if uid := claims[s.opt.UserIDClaim]; truthy(uid) {
		u, res := s.lookupClaim(uid)
		switch {
		case res != userFound:
			// SimpleJWT 5.5 calls objects.get without catching DoesNotExist: a deleted user's
			// refresh token is a 500, not a 401.
			return http.StatusInternalServerError, nil
		case !u.IsActive:
			return http.StatusUnauthorized, detail("No active account found for the given token.")
		}
	}
	access := s.Sign(s.accessFrom(claims))
	if !s.opt.Rotate {
		return http.StatusOK, object{{"access", access}}
	}
	s.mu.Lock()
	_, already := s.blacklist[jtiKey(claims["jti"])]
	s.blacklist[jtiKey(claims["jti"])] = struct{}{}
	s.mu.Unlock()
	if already { // a concurrent refresh with the same token won the race
		return http.StatusUnauthorized, tokenNotValid("Token is blacklisted")
	}
	claims["jti"] = newJTI()
	claims["exp"] = s.now().Add(s.opt.RefreshTTL).Unix()
	claims["iat"] = s.now().Unix()
	return http.StatusOK, object{{"access", access}, {"refresh", s.Sign(claims)}}
}

// verify is TokenVerifyView: any valid token passes, refresh tokens included, and the user is
// never looked up. This is the trap the gateway must not fall into.
func (s *Server) verify(data any) (int, object) {
	vals, errs := fields(data, "token")
	if errs != nil {
		return http.StatusBadRequest, errs
	}
	claims, msg := s.checkToken(vals[0], "", false)
	if msg != "" {
		return http.StatusUnauthorized, tokenNotValid(msg)
	}
	if s.blacklisted(claims["jti"]) {
		if s.opt.VerifyBlacklist400 {
			return http.StatusBadRequest, object{{"non_field_errors", []string{"Token is blacklisted"}}}
		}
		return http.StatusUnauthorized, tokenNotValid("Token is blacklisted")
	}
	return http.StatusOK, object{}
}

// blacklistToken is TokenBlacklistView.
func (s *Server) blacklistToken(data any) (int, object) {
	vals, errs := fields(data, "refresh")
	if errs != nil {
		return http.StatusBadRequest, errs
	}
	claims, msg := s.checkToken(vals[0], TypeRefresh, true)
	if msg != "" {
		return http.StatusUnauthorized, tokenNotValid(msg)
	}
	s.mu.Lock()
	s.blacklist[jtiKey(claims["jti"])] = struct{}{}
	s.mu.Unlock()
	return http.StatusOK, object{}
}

// userView wraps a DRF view with JWTAuthentication and IsAuthenticated. As in DRF, authentication
// runs before the method check, so a POST without credentials is a 401, not a 405.
func (s *Server) userView(name string, get func(caller User) (User, int, object)) view {
	const allow = "GET, HEAD, OPTIONS"
	v := view{name: name, allow: allow}
	v.serve = func(w http.ResponseWriter, r *http.Request) {
		caller, status, body := s.authenticate(r)
		switch {
		case status == http.StatusInternalServerError:
			writeDjangoPage(w, status)
			return
		case body != nil:
			writeJSON(w, status, body, allow)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			v.options(w)
			return
		default:
			methodNotAllowed(w, r, allow)
			return
		}
		u, status, body := get(caller)
		if body != nil {
			writeJSON(w, status, body, allow)
			return
		}
		writeJSON(w, http.StatusOK, s.record(u), allow)
	}
	return v
}

// authenticate is SimpleJWT's JWTAuthentication followed by DRF's IsAuthenticated. It returns the
// caller, or the status and body of the refusal (status 500 with a nil body for Django's page).
func (s *Server) authenticate(r *http.Request) (User, int, object) {
	notProvided := detail("Authentication credentials were not provided.")
	parts := strings.Fields(r.Header.Get("Authorization"))
	if len(parts) == 0 || parts[0] != "Bearer" { // case-sensitive, as AUTH_HEADER_TYPES is
		return User{}, http.StatusUnauthorized, notProvided
	}
	if len(parts) != 2 {
		return User{}, http.StatusUnauthorized, object{
			{"detail", "Authorization header must contain two space-delimited values"},
			{"code", "bad_authorization_header"},
		}
	}
	claims, msg := s.checkToken(parts[1], TypeAccess, false)
	if msg != "" {
		return User{}, http.StatusUnauthorized, object{
			{"detail", "Given token not valid for any token type"},
			{"code", "token_not_valid"},
			{"messages", []object{{{"token_class", "AccessToken"}, {"token_type", TypeAccess}, {"message", msg}}}},
		}
	}
	uid, ok := claims[s.opt.UserIDClaim]
	if !ok {
		return User{}, http.StatusUnauthorized, tokenNotValid("Token contained no recognizable user identification")
	}
	u, res := s.lookupClaim(uid)
	switch {
	case res == userBadValue:
		return User{}, http.StatusInternalServerError, nil
	case res == userMissing:
		return User{}, http.StatusUnauthorized, object{{"detail", "User not found"}, {"code", "user_not_found"}}
	case !u.IsActive:
		return User{}, http.StatusUnauthorized, object{{"detail", "User is inactive"}, {"code", "user_inactive"}}
	}
	return u, 0, nil
}

// userByID is the retrieve view behind "/auth/users/{id}/": the queryset of a non-staff caller
// holds only its own record.
func (s *Server) userByID(caller User, digits string) (User, int, object) {
	notFound := detail("Not found.")
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil { // more digits than any id
		return User{}, http.StatusNotFound, notFound
	}
	if id != caller.ID && !caller.IsStaff {
		if s.opt.OtherUser403 {
			return User{}, http.StatusForbidden, detail("You do not have permission to perform this action.")
		}
		return User{}, http.StatusNotFound, notFound
	}
	u, ok := s.User(id)
	if !ok {
		return User{}, http.StatusNotFound, notFound
	}
	return u, http.StatusOK, nil
}

// record is the user serializer's output: the standard fields in order, then Extra sorted by key.
func (s *Server) record(u User) object {
	var lastLogin any
	if u.LastLogin != nil {
		lastLogin = isoTime(*u.LastLogin, s.opt.Location)
	}
	o := object{
		{"id", u.ID},
		{"email", u.Email},
		{"username", u.Username},
		{"first_name", u.FirstName},
		{"last_name", u.LastName},
		{"date_joined", isoTime(u.DateJoined, s.opt.Location)},
		{"last_login", lastLogin},
		{"is_active", u.IsActive},
		{"is_staff", u.IsStaff},
		{"is_superuser", u.IsSuperuser},
	}
	keys := make([]string, 0, len(u.Extra))
	for k := range u.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		o = o.set(k, u.Extra[k])
	}
	return o
}
