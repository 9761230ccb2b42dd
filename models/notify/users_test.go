package notify

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"jwtgate/models"
)

// TestUsersMessagesCarryTheIssuer: a user message names the user's
// namespace; one without "iss" (from a replica that predates several
// issuers) means the auth service's user, as it always did.
func TestUsersMessagesCarryTheIssuer(t *testing.T) {
	var got []models.UserKey
	l := &Listener{h: Handler{UserChanged: func(k models.UserKey) { got = append(got, k) }}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, k := range []models.UserKey{{ID: "1"}, {Issuer: "legacy", ID: "1"}} {
		b, err := json.Marshal(Message{Kind: KindUser, User: k.ID, Issuer: k.Issuer})
		if err != nil {
			t.Fatal(err)
		}
		l.dispatch(string(b))
	}
	l.dispatch(`{"k":"user","id":"7"}`)
	want := []models.UserKey{{ID: "1"}, {Issuer: "legacy", ID: "1"}, {ID: "7"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if b, _ := json.Marshal(Message{Kind: KindUser, User: "1"}); string(b) != `{"k":"user","id":"1"}` {
		t.Fatalf("the auth service's user is sent as %s, which older replicas would not read the same", b)
	}
}
