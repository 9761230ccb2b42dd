package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"jwtgate/models"
)

// Applier is what a Follower does with the changes it reads back.
type Applier struct {
	// TokenRevoked refuses a token until until (from the revoked token's row).
	TokenRevoked func(key [32]byte, until time.Time)
	// UserChanged drops a cached user: the next use reads its row (cutoff,
	// active flag) from the mirror.
	UserChanged func(k models.UserKey)
	// AllUsersChanged drops every cached user (users purge).
	AllUsersChanged func()
}

// reorderWindow is how far back a poll looks for change rows committed out
// of Seq order (on PostgreSQL a transaction can take seq 5, another seq 6,
// and the second commit first). Rows already applied are skipped.
const reorderWindow = 256

// pollBatch bounds the rows read by one poll.
const pollBatch = 1000

// Follower applies the revocation changes written by any process sharing
// the database (replicas, the jwtgate CLI) by reading them back from the
// revocation_changes table: every interval, and at once on Poke (a NOTIFY
// hint on PostgreSQL). A hint is never trusted: only rows in the table,
// which only roles with rights on it can write, change what is refused.
type Follower struct {
	store    *models.Store
	apply    Applier
	log      *slog.Logger
	interval time.Duration
	poke     chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}

	mu      sync.Mutex
	last    int64          // highest Seq applied
	applied map[int64]bool // applied Seqs within reorderWindow of last
}

// Follow starts following changes written after the current last one;
// the caller loads the state itself (revoked tokens, users on demand).
func Follow(ctx context.Context, st *models.Store, a Applier, interval time.Duration, log *slog.Logger) (*Follower, error) {
	last, err := st.LastChange(ctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &Follower{store: st, apply: a, log: log, interval: interval, poke: make(chan struct{}, 1),
		cancel: cancel, done: make(chan struct{}), last: last, applied: map[int64]bool{}}
	go f.run(cctx)
	return f, nil
}

// Poke asks for a poll now; pokes while one is pending are merged, so a
// flood of hints costs at most one query per poll.
func (f *Follower) Poke() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

// Stop ends the polling and waits for it.
func (f *Follower) Stop() {
	f.cancel()
	<-f.done
}

func (f *Follower) run(ctx context.Context) {
	defer close(f.done)
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.poke:
		}
		if err := f.Poll(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("could not read revocation changes; retrying", "err", err)
		}
	}
}

// Poll reads and applies the changes not applied yet.
func (f *Follower) Poll(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range 100 { // bounded: at most 100 batches per poll
		cs, err := f.store.ChangesAfter(ctx, max(0, f.last-reorderWindow), pollBatch+reorderWindow)
		if err != nil {
			return err
		}
		fresh := 0
		for _, c := range cs {
			if f.applied[c.Seq] {
				continue
			}
			fresh++
			f.applied[c.Seq] = true
			f.last = max(f.last, c.Seq)
			f.applyOne(c)
		}
		for s := range f.applied {
			if s <= f.last-reorderWindow {
				delete(f.applied, s)
			}
		}
		if fresh == 0 || len(cs) < pollBatch+reorderWindow {
			return nil
		}
	}
	return nil
}

func (f *Follower) applyOne(c models.RevocationChange) {
	switch c.Kind {
	case models.ChangeToken:
		if key, ok := c.TokenKey(); ok && f.apply.TokenRevoked != nil {
			f.apply.TokenRevoked(key, c.ExpiresAt)
		}
	case models.ChangeUser:
		if f.apply.UserChanged != nil {
			f.apply.UserChanged(c.UserKey())
		}
	case models.ChangeAll:
		if f.apply.AllUsersChanged != nil {
			f.apply.AllUsersChanged()
		}
	}
}
