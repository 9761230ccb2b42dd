package djangoauth

import "testing"

// Stop ends the service now, as an outage would (SIGTERM, then SIGKILL
// after 5 seconds): its port is closed when Stop returns. The test's
// cleanup does nothing more.
func (s *Service) Stop(t testing.TB) {
	t.Helper()
	if err := s.proc.stop(); err != nil {
		t.Fatalf("djangoauth: stop gunicorn: %v\n%s", err, s.logs)
	}
}
