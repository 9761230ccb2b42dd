package djangoauth

import (
	"encoding/json"
	"testing"
)

// ThrottleCreateUsers creates active users who log in with each email and
// password, in one manage.py run (one createtestuser per user costs a
// Python start each, over a second on a busy machine).
func (s *Service) ThrottleCreateUsers(t testing.TB, emails []string, password string) {
	t.Helper()
	list, err := json.Marshal(emails)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := json.Marshal(password)
	if err != nil {
		t.Fatal(err)
	}
	script := "import json\nfrom accounts.models import User\n" +
		"for e in json.loads(" + string(mustJSON(string(list))) + "):\n" +
		"    User.objects.create_user(e, json.loads(" + string(mustJSON(string(pw))) + "))\n"
	if _, err := s.manage("shell", "-c", script); err != nil {
		t.Fatalf("djangoauth: create %d users: %v", len(emails), err)
	}
}

// mustJSON quotes s as a JSON string, which is also a valid Python literal.
func mustJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
