package models

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// RevokedToken is one token logged out through the gateway, refused until
// it expires. Only a token that verified is ever written (authn.Revoke).
type RevokedToken struct {
	// Key is the hex revocation key (Token.Key): SHA-256 of (iss, jti), or
	// of the canonical token text when it has no jti.
	Key       string    `gorm:"primaryKey;size:64"`
	ExpiresAt time.Time `gorm:"index;not null"`
	CreatedAt time.Time
}

// Kinds of RevocationChange.
const (
	ChangeToken = "token" // a token was revoked (Key, ExpiresAt)
	ChangeUser  = "user"  // a user's cutoff, active flag or row changed (Issuer, UserID)
	ChangeAll   = "all"   // many users changed at once (users purge)
)

// RevocationChange is one change to revocations or users, in commit order
// of its Seq. Replicas read these back (polling, and on PostgreSQL when a
// NOTIFY hint arrives) and act only on what they read: a hint carries no
// authority, the table is written only by roles with rights on it.
type RevocationChange struct {
	Seq       int64  `gorm:"primaryKey;autoIncrement"`
	Kind      string `gorm:"size:16;not null"`
	Key       string `gorm:"size:64"`
	ExpiresAt time.Time
	Issuer    string    `gorm:"size:191"`
	UserID    string    `gorm:"size:191"`
	CreatedAt time.Time `gorm:"index"`
}

// UserKey is the key of the user a ChangeUser is about.
func (c RevocationChange) UserKey() UserKey { return UserKey{Issuer: c.Issuer, ID: c.UserID} }

// TokenKey is the revocation key of a ChangeToken; ok is false when Key is
// not 64 hex digits.
func (c RevocationChange) TokenKey() (key [32]byte, ok bool) {
	b, err := hex.DecodeString(c.Key)
	if err != nil || len(b) != 32 {
		return key, false
	}
	return [32]byte(b), true
}

// changeRetention is how long change rows are kept: far longer than a
// replica's poll interval, so a replica never misses one it has not read.
const changeRetention = time.Hour

func (s *Store) recordChange(tx *gorm.DB, c RevocationChange) error {
	if err := tx.Create(&c).Error; err != nil {
		return fmt.Errorf("record %s change: %w", c.Kind, err)
	}
	return nil
}

// RecordUserChange records that a user changed (deleted, say), so running
// replicas drop their cached copy.
func (s *Store) RecordUserChange(ctx context.Context, k UserKey) error {
	return s.recordChange(s.db.WithContext(ctx), RevocationChange{Kind: ChangeUser, Issuer: k.Issuer, UserID: k.ID})
}

// RecordAllUsersChanged records that many users changed at once (users
// purge), so running replicas drop their whole user cache.
func (s *Store) RecordAllUsersChanged(ctx context.Context) error {
	return s.recordChange(s.db.WithContext(ctx), RevocationChange{Kind: ChangeAll})
}

// RevokeToken records a logged-out token until exp, with its change row, in
// one transaction. Recording the same key again is harmless.
func (s *Store) RevokeToken(ctx context.Context, key [32]byte, exp time.Time) error {
	hk := hex.EncodeToString(key[:])
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&RevokedToken{Key: hk, ExpiresAt: exp.UTC()}).Error
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return s.recordChange(tx, RevocationChange{Kind: ChangeToken, Key: hk, ExpiresAt: exp.UTC()})
	})
}

// RevokedTokens returns the revocations that have not expired at now, by
// key, with their expiry.
func (s *Store) RevokedTokens(ctx context.Context, now time.Time) (map[[32]byte]time.Time, error) {
	var rows []RevokedToken
	if err := s.db.WithContext(ctx).Where("expires_at > ?", now.UTC()).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load revoked tokens: %w", err)
	}
	out := make(map[[32]byte]time.Time, len(rows))
	for _, r := range rows {
		if key, ok := (RevocationChange{Key: r.Key}).TokenKey(); ok {
			out[key] = r.ExpiresAt
		}
	}
	return out, nil
}

// PruneRevocations deletes revocations expired at now and change rows older
// than changeRetention; it returns how many revocations went.
func (s *Store) PruneRevocations(ctx context.Context, now time.Time) (int64, error) {
	db := s.db.WithContext(ctx)
	res := db.Where("expires_at <= ?", now.UTC()).Delete(&RevokedToken{})
	if res.Error != nil {
		return 0, fmt.Errorf("prune revoked tokens: %w", res.Error)
	}
	if err := db.Where("created_at < ?", now.Add(-changeRetention).UTC()).Delete(&RevocationChange{}).Error; err != nil {
		return res.RowsAffected, fmt.Errorf("prune revocation changes: %w", err)
	}
	return res.RowsAffected, nil
}

// ChangesAfter returns up to limit change rows with Seq > after, in Seq order.
func (s *Store) ChangesAfter(ctx context.Context, after int64, limit int) ([]RevocationChange, error) {
	var cs []RevocationChange
	if err := s.db.WithContext(ctx).Where("seq > ?", after).Order("seq").Limit(limit).Find(&cs).Error; err != nil {
		return nil, fmt.Errorf("read revocation changes: %w", err)
	}
	return cs, nil
}

// LastChange returns the highest change Seq (0 when there is none).
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq *int64
	if err := s.db.WithContext(ctx).Model(&RevocationChange{}).Select("MAX(seq)").Scan(&seq).Error; err != nil {
		return 0, fmt.Errorf("read revocation changes: %w", err)
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}

// SetTokensValidAfter sets a user's cutoff (truncated to the second) and
// records the change, in one transaction. A user not in the mirror gets a
// placeholder row (inactive, never fetched: the next use re-fetches it and
// keeps the cutoff), so the cutoff holds for tokens the gateway has not
// seen yet.
func (s *Store) SetTokensValidAfter(ctx context.Context, k UserKey, t time.Time) error {
	t = t.UTC().Truncate(time.Second)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&User{}).Where("issuer = ? AND id = ?", k.Issuer, k.ID).Update("tokens_valid_after", t)
		if res.Error != nil {
			return fmt.Errorf("set user %q cutoff: %w", k, res.Error)
		}
		if res.RowsAffected == 0 {
			u := User{Issuer: k.Issuer, ID: k.ID, TokensValidAfter: &t}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&u).Error; err != nil {
				return fmt.Errorf("set user %q cutoff: %w", k, err)
			}
		}
		return s.recordChange(tx, RevocationChange{Kind: ChangeUser, Issuer: k.Issuer, UserID: k.ID})
	})
}
