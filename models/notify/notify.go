// Package notify keeps jwtgate replicas, and the jwtgate CLI, in step on
// the database they share. Every revocation change (a logout, a user's
// cutoff, a deactivation, a deletion) is a row of revocation_changes,
// which a Follower in every gateway reads back every second and applies:
// the tables are the authority. On PostgreSQL the writer also publishes a
// LISTEN/NOTIFY message, a hint that makes the others read at once;
// messages carry SHA-256 token hashes and user ids, never tokens, and any
// role that can connect can send one, so a message only evicts a cache
// entry and triggers a read: it never refuses a token by itself. (HMAC-
// authenticated payloads were the alternative; reading back needs no
// shared key to distribute and rotate, and the rows are needed anyway for
// replicas started later.) On SQLite publishing is a no-op.
package notify

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"jwtgate/models"
)

// Channel is the PostgreSQL notification channel jwtgate uses.
const Channel = "jwtgate_evict"

// Kinds of message.
const (
	KindToken = "token"
	KindUser  = "user"
)

// publishTimeout bounds one NOTIFY: a slow database must not hold a logout.
const publishTimeout = 2 * time.Second

// Message is one cache invalidation.
type Message struct {
	Kind string `json:"k"`
	// Hash is the hex SHA-256 of a token (KindToken).
	Hash string `json:"h,omitempty"`
	// Until, Unix seconds, is when a revoked token expires; 0: evict only.
	Until int64 `json:"u,omitempty"`
	// User is a user id (KindUser).
	User string `json:"id,omitempty"`
	// Issuer is the user's namespace (models.User.Issuer, KindUser); absent
	// for the auth service's users, so messages of replicas that predate
	// several issuers still mean the same user.
	Issuer string `json:"iss,omitempty"`
}

// Publisher sends messages to every replica. It implements authn.Peers.
type Publisher struct {
	store *models.Store
	log   *slog.Logger
	// onSent, when set, is told each publish's kind and error (for metrics).
	onSent func(kind string, err error)
}

// NewPublisher publishes through the store's database; on SQLite it does
// nothing. onSent, when not nil, is told each publish's kind and error
// (for metrics).
func NewPublisher(st *models.Store, log *slog.Logger, onSent func(kind string, err error)) *Publisher {
	return &Publisher{store: st, log: log, onSent: onSent}
}

// TokenRevoked tells every replica to evict a token and, when until is
// set, to refuse it until then.
func (p *Publisher) TokenRevoked(key [32]byte, until time.Time) {
	m := Message{Kind: KindToken, Hash: hex.EncodeToString(key[:])}
	if !until.IsZero() {
		m.Until = until.Unix()
	}
	p.send(m)
}

// UserChanged tells every replica to evict a user (deactivated or deleted).
func (p *Publisher) UserChanged(k models.UserKey) {
	p.send(Message{Kind: KindUser, User: k.ID, Issuer: k.Issuer})
}

func (p *Publisher) send(m Message) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	err := p.Publish(ctx, m)
	if p.onSent != nil {
		p.onSent(m.Kind, err)
	}
	if err != nil {
		p.log.Error("could not tell the other replicas", "kind", m.Kind, "err", err)
	}
}

// Publish sends one message; on SQLite it does nothing.
func (p *Publisher) Publish(ctx context.Context, m Message) error {
	if p.store.Driver() != "postgres" {
		return nil
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if err := p.store.DB().WithContext(ctx).Exec("SELECT pg_notify(?, ?)", Channel, string(payload)).Error; err != nil {
		return fmt.Errorf("notify %s: %w", m.Kind, err)
	}
	return nil
}

// Handler receives other replicas' messages (and this replica's own,
// which are harmless: evicting twice). Messages are hints: anyone who can
// connect to the database can send one, so a handler may evict (which
// costs a re-check) and poll the revocation tables (Follower.Poke), but
// never refuses anything on a message's word.
type Handler struct {
	// TokenRevoked is told a token hash to evict; until is the sender's
	// claim, for information only.
	TokenRevoked func(key [32]byte, until time.Time)
	UserChanged  func(k models.UserKey)
	// Hint is called for every well-formed message, after the above.
	Hint func()
	// Malformed counts a message that is not one of ours (by kind:
	// "json", "hash", "kind").
	Malformed func(why string)
	// Gap is called after a reconnect: messages sent while the connection
	// was down are lost, so caches should be dropped and state reloaded.
	Gap func()
}

// malformedLogEvery is how often at most a malformed message is logged
// (with how many were ignored since): a flood of junk NOTIFYs must not
// flood the log.
const malformedLogEvery = time.Minute

// Listener holds one connection LISTENing on Channel, reconnecting with
// backoff until Stop.
type Listener struct {
	dsn    string
	h      Handler
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	readyOnce sync.Once
	ready     chan struct{}

	malformedMu     sync.Mutex
	malformedLogged time.Time // last log line about malformed messages
	malformedSince  int       // malformed messages since that line
}

// Listen starts listening on the PostgreSQL database dsn names.
func Listen(dsn string, h Handler, log *slog.Logger) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{dsn: dsn, h: h, log: log, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	go l.run(ctx)
	return l
}

// WaitReady waits until the first LISTEN took effect, or ctx ends.
func (l *Listener) WaitReady(ctx context.Context) error {
	select {
	case <-l.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("listen on %s: %w", Channel, ctx.Err())
	}
}

// Stop closes the connection and waits for the goroutine to end.
func (l *Listener) Stop() {
	l.cancel()
	<-l.done
}

func (l *Listener) run(ctx context.Context) {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	connected := false
	for ctx.Err() == nil {
		err := l.session(ctx, connected, func() {
			connected = true
			backoff = 100 * time.Millisecond
		})
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("lost the notification connection; reconnecting", "channel", Channel, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// session connects, listens and dispatches until the connection fails.
func (l *Listener) session(ctx context.Context, reconnect bool, up func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, l.dsn)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	up()
	if reconnect && l.h.Gap != nil {
		l.log.Info("notification connection back; dropping caches that may have missed messages")
		l.h.Gap()
	}
	l.readyOnce.Do(func() { close(l.ready) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		l.dispatch(n.Payload)
	}
}

func (l *Listener) dispatch(payload string) {
	var m Message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		l.malformed("json")
		return
	}
	switch m.Kind {
	case KindToken:
		key, err := hex.DecodeString(m.Hash)
		if err != nil || len(key) != 32 {
			l.malformed("hash")
			return
		}
		var until time.Time
		if m.Until > 0 {
			until = time.Unix(m.Until, 0)
		}
		if l.h.TokenRevoked != nil {
			l.h.TokenRevoked([32]byte(key), until)
		}
	case KindUser:
		if m.User == "" {
			l.malformed("user")
			return
		}
		if l.h.UserChanged != nil {
			l.h.UserChanged(models.UserKey{Issuer: m.Issuer, ID: m.User})
		}
	default:
		l.malformed("kind")
		return
	}
	if l.h.Hint != nil {
		l.h.Hint()
	}
}

// malformed counts an ignored message and logs at most one line per
// malformedLogEvery.
func (l *Listener) malformed(why string) {
	if l.h.Malformed != nil {
		l.h.Malformed(why)
	}
	l.malformedMu.Lock()
	defer l.malformedMu.Unlock()
	l.malformedSince++
	if now := time.Now(); now.Sub(l.malformedLogged) >= malformedLogEvery {
		l.log.Warn("ignoring malformed notifications", "channel", Channel, "count", l.malformedSince, "last_reason", why)
		l.malformedLogged, l.malformedSince = now, 0
	}
}
