package models

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AuditEvent is one operator or admin action on a user (audit_events).
type AuditEvent struct {
	ID int64     `gorm:"primaryKey;autoIncrement"`
	At time.Time `gorm:"index;not null"`
	// Actor is who acted: the admin's user key ("iss|id" or id) for the
	// admin API, "cli" for the jwtgate command.
	Actor string `gorm:"size:400;not null"`
	// Action is revoke, deactivate or activate (or delete, purge from the CLI).
	Action string `gorm:"size:32;not null"`
	// Target is the user key acted on ("" for purge).
	Target string `gorm:"size:400"`
	// RequestID is the admin API request's id ("" from the CLI).
	RequestID string `gorm:"size:200"`
}

// RecordAudit writes one audit event; At is set to now when zero.
func (s *Store) RecordAudit(ctx context.Context, e AuditEvent) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	if err := s.db.WithContext(ctx).Create(&e).Error; err != nil {
		return fmt.Errorf("write audit event: %w", err)
	}
	return nil
}

// AuditEvents returns the events at or after since, oldest first, at most limit.
func (s *Store) AuditEvents(ctx context.Context, since time.Time, limit int) ([]AuditEvent, error) {
	var es []AuditEvent
	if err := s.db.WithContext(ctx).Where("at >= ?", since.UTC()).Order("id").Limit(limit).Find(&es).Error; err != nil {
		return nil, fmt.Errorf("read audit events: %w", err)
	}
	return es, nil
}

// likeEscaper escapes LIKE's wildcards and its escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// SearchUsers lists mirrored users of the auth service (issuer "") whose
// id is q, or whose email or username contains q (any case; LIKE
// wildcards in q are literal), ordered by id, from offset, at most limit.
// An empty q lists everyone.
func (s *Store) SearchUsers(ctx context.Context, q string, offset, limit int) ([]User, error) {
	db := s.db.WithContext(ctx).Where("issuer = ?", "")
	if q != "" {
		pat := "%" + likeEscaper.Replace(strings.ToLower(q)) + "%"
		db = db.Where(`id = ? OR LOWER(email) LIKE ? ESCAPE '\' OR LOWER(username) LIKE ? ESCAPE '\'`, q, pat, pat)
	}
	var us []User
	if err := db.Order("id").Offset(offset).Limit(limit).Find(&us).Error; err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	return us, nil
}
