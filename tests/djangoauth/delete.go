package djangoauth

import (
	"strconv"
	"testing"
)

// DeleteUser deletes the user, as an admin removing an account would: the
// user endpoint then answers SimpleJWT's 401 user_not_found to the user's
// tokens, which stay valid at the verify endpoint until they expire.
func (s *Service) DeleteUser(t testing.TB, id int64) {
	t.Helper()
	if _, err := s.manage("deletetestuser", "--id", strconv.FormatInt(id, 10)); err != nil {
		t.Fatalf("djangoauth: deletetestuser --id %d: %v", id, err)
	}
}
