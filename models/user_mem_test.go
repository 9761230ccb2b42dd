package models

import (
	"runtime"
	"testing"
)

// TestAttributesMapSizedForItsKeys: a user record from the auth service
// carries the standard fields already, so the attributes map is sized for
// the keys it holds (plus the "issuer" the user cache adds), not for
// len(Fields)+8. With 10 000 cached users the oversized maps cost 5 MB
// (issue 16: tests/load --memory-only).
func TestAttributesMapSizedForItsKeys(t *testing.T) {
	u := User{ID: "7", Email: "user7@example.com", Username: "user7", IsActive: true, Fields: map[string]any{
		"id": 7.0, "email": "user7@example.com", "username": "user7", "first_name": "", "last_name": "",
		"is_active": true, "is_staff": false, "is_superuser": false, "services": []any{"billing"},
	}}
	const n = 2000
	keep := make([]map[string]any, 0, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		m := u.Attributes()
		m["issuer"] = ""
		keep = append(keep, m)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perUser := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	runtime.KeepAlive(keep)
	if len(keep[0]) != 10 {
		t.Fatalf("attributes hold %d keys, want 10: %v", len(keep[0]), keep[0])
	}
	// 16 slots of (string, any) and their control words, and the boxed
	// strings: about 700 bytes; sized for 17 keys it was about 1300.
	if perUser > 1000 {
		t.Errorf("attributes of one user take %d bytes of heap, want at most 1000", perUser)
	}
}
