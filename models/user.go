package models

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"
)

// User is a mirrored record of the auth service's user. The primary key is
// (Issuer, ID): the user namespace and the id within it (as text, so
// numeric and UUID ids both fit). Email is not unique, so an email change
// or swap never duplicates or collides.
type User struct {
	// Issuer is the user namespace: "" for the users of the auth service
	// (auth_service.url; with one issuer, every user), otherwise the iss of
	// the issuer whose users they are. See UserKey.
	Issuer      string `gorm:"primaryKey;size:191;not null"`
	ID          string `gorm:"primaryKey;size:191"`
	Email       string `gorm:"index;size:320"`
	Username    string `gorm:"size:191"`
	FirstName   string
	LastName    string
	IsActive    bool
	IsStaff     bool
	IsSuperuser bool
	DateJoined  *time.Time
	LastLogin   *time.Time
	// Fields is the whole record as the auth service sent it, extra fields
	// included, for access rules.
	Fields map[string]any `gorm:"serializer:json"`
	// FetchedAt is when the record was last fetched from the auth service.
	FetchedAt time.Time `gorm:"index"`
	// TokensValidAfter is the user's token cutoff (UTC, whole seconds): a
	// token whose iat is before it, or that has no iat, is refused. Nil:
	// none. Only the gateway sets it (logout-all, jwtgate users revoke, the
	// admin API, a re-fetch finding the user inactive or gone); a fetch from
	// the auth service never overwrites it (not in the upsert's columns).
	TokensValidAfter *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// derived is a *derivedValue (see Derived), read and written
	// atomically; not a column (unexported), and an unsafe.Pointer rather
	// than atomic.Pointer so a User can still be copied by value.
	derived unsafe.Pointer
}

// derivedValue is a value built from one record by one owner.
type derivedValue struct {
	owner any
	rec   *User // the record it was built from: a copy of the User does not inherit it
	v     any
}

// Derived returns the value owner derived from this record (with
// SetDerived), if any. It lets another package keep a per-record value
// (handlers' identity header values) with the record itself: the value
// lives and dies with the record, and a refreshed record (a new *User) or a
// copy of one starts without it. A record must not be changed once a value
// has been derived from it.
func (u *User) Derived(owner any) (any, bool) {
	d := (*derivedValue)(atomic.LoadPointer(&u.derived))
	if d == nil || d.rec != u || d.owner != owner {
		return nil, false
	}
	return d.v, true
}

// SetDerived keeps v as owner's value for this record, replacing any other
// owner's (one slot: the owner of the live settings wins).
func (u *User) SetDerived(owner, v any) {
	atomic.StorePointer(&u.derived, unsafe.Pointer(&derivedValue{owner: owner, rec: u, v: v}))
}

// UserKey identifies a mirrored user: the namespace (User.Issuer) and the
// id within it. A user id alone is ambiguous once several issuers are
// trusted: issuer A's user 1 and a legacy issuer's user 1 are two people.
type UserKey struct {
	Issuer string
	ID     string
}

// Key returns the user's key.
func (u *User) Key() UserKey { return UserKey{Issuer: u.Issuer, ID: u.ID} }

// String renders the key for logs: the id alone in the auth service's
// namespace, else "iss|id".
func (k UserKey) String() string {
	if k.Issuer == "" {
		return k.ID
	}
	return k.Issuer + "|" + k.ID
}

// UserFromRecord builds a User from the auth service's JSON record. The id
// may be a number or a string; dates may carry any UTC offset or be null.
func UserFromRecord(body []byte, fetchedAt time.Time) (User, error) {
	var rec map[string]any
	if err := json.Unmarshal(body, &rec); err != nil {
		return User{}, fmt.Errorf("user record: %w", err)
	}
	id, ok := IDString(rec["id"])
	if !ok {
		// /auth/user/ style services sometimes name it pk.
		if id, ok = IDString(rec["pk"]); !ok {
			return User{}, fmt.Errorf("user record: no id field")
		}
	}
	u := User{
		ID:          id,
		Email:       str(rec["email"]),
		Username:    str(rec["username"]),
		FirstName:   str(rec["first_name"]),
		LastName:    str(rec["last_name"]),
		IsActive:    true,
		IsStaff:     rec["is_staff"] == true,
		IsSuperuser: rec["is_superuser"] == true,
		DateJoined:  date(rec["date_joined"]),
		LastLogin:   date(rec["last_login"]),
		Fields:      rec,
		FetchedAt:   fetchedAt,
	}
	if v, present := rec["is_active"]; present {
		u.IsActive = v == true
	}
	return u, nil
}

// IDString turns a JSON id (number or string) into its text form; ok is
// false when the value is absent, empty or of another type.
func IDString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != ""
	case float64:
		if x != float64(int64(x)) {
			return "", false
		}
		return strconv.FormatInt(int64(x), 10), true
	case json.Number:
		if _, err := x.Int64(); err != nil {
			return "", false
		}
		return x.String(), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	}
	return "", false
}

// standardAttributes are the keys Attributes sets from User's own fields.
var standardAttributes = [...]string{"id", "email", "username", "first_name", "last_name", "is_active", "is_staff", "is_superuser"}

// Attributes returns the user as access rules see it: every field the auth
// service sent, with the mirrored columns as the authority for the standard
// ones. The map is built fresh; callers may keep it.
func (u *User) Attributes() map[string]any {
	// Sized for the keys it will hold, not len(Fields)+8: the record from
	// the auth service has the standard fields already, and a map sized
	// for 17 keys takes twice the memory of one for 11 (a user cache of
	// 10 000 users: 5 MB). Room is left for the "issuer" the cache adds.
	n := len(u.Fields) + 1
	for _, k := range standardAttributes {
		if _, ok := u.Fields[k]; !ok {
			n++
		}
	}
	m := make(map[string]any, n)
	maps.Copy(m, u.Fields)
	m["id"] = u.ID
	m["email"] = u.Email
	m["username"] = u.Username
	m["first_name"] = u.FirstName
	m["last_name"] = u.LastName
	m["is_active"] = u.IsActive
	m["is_staff"] = u.IsStaff
	m["is_superuser"] = u.IsSuperuser
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func date(v any) *time.Time {
	s, ok := v.(string)
	if !ok || s == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t
		}
	}
	return nil
}
