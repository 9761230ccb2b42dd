package handlers

import (
	"testing"
	"time"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/metrics"
	"jwtgate/models"
)

// Every token of a user shares one bucket; users of two issuers with the
// same id do not.
func TestRatelimitUserKey(t *testing.T) {
	now := time.Unix(1000, 0)
	rl, err := newRouteLimit("api", models.RouteRateLimit{PerUser: "1/minute"}, 10, func() time.Time { return now }, metrics.New(nil), nil, limitSet{})
	if err != nil {
		t.Fatal(err)
	}
	tok1 := &authn.Principal{User: &models.User{ID: "7"}, Token: models.Token{UserID: "7", Kid: "a"}}
	tok2 := &authn.Principal{User: &models.User{ID: "7"}, Token: models.Token{UserID: "7", Kid: "b"}}
	other := &authn.Principal{User: &models.User{ID: "7", Issuer: "https://idp.example"}, Issuer: "https://idp.example"}
	if err := rl.take(tok1, nil); err != nil {
		t.Fatal(err)
	}
	if err := rl.take(tok2, nil); err == nil {
		t.Fatal("the user's second token got its own bucket")
	}
	if err := rl.take(other, nil); err != nil {
		t.Fatalf("user 7 of another issuer shares the bucket: %v", err)
	}
	if err := rl.take(nil, fixedClient("127.0.0.9")); err != nil {
		t.Fatalf("anonymous with per_client off: %v", err)
	}
}

// BenchmarkRatelimitTake is the cost of one request's bucket take.
func BenchmarkRatelimitTake(b *testing.B) {
	// A clock that moves a millisecond a call keeps the bucket from running
	// dry, so every take is an allowed one.
	now := time.Unix(1000, 0)
	tick := func() time.Time { now = now.Add(time.Millisecond); return now }
	rl, err := newRouteLimit("api", models.RouteRateLimit{PerUser: "1000/second"}, 10000, tick, metrics.New(nil), nil, limitSet{})
	if err != nil {
		b.Fatal(err)
	}
	p := &authn.Principal{User: &models.User{ID: "42"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := rl.take(p, nil); err != nil {
			b.Fatal(err)
		}
	}
}
