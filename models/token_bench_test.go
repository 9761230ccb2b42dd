package models

import "testing"

// BenchmarkPrecheckToken: the pre-checks of one SimpleJWT access token, the
// work every token not yet in the verdict cache pays.
func BenchmarkPrecheckToken(b *testing.B) {
	raw := sign(b, access(nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PrecheckToken(raw, "user_id", 0, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
