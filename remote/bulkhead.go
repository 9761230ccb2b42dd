package remote

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"jwtgate/models"
)

// BulkheadObserver is told how the bulkhead on calls home is used (for
// metrics). Its methods are called on the request path and must be cheap
// and safe for concurrent use.
type BulkheadObserver interface {
	// BulkheadInFlight is told each change (+1, -1) of the number of calls
	// home holding a slot.
	BulkheadInFlight(delta int)
	// BulkheadWait is told how long a call waited for a slot, and whether it
	// got one (false: its deadline ended or its caller went away first).
	BulkheadWait(d time.Duration, admitted bool)
}

// BusyError is returned, without calling, when a call home waited for a
// slot in the bulkhead (auth_service.max_in_flight) until its deadline. It
// matches models.ErrAuthUnavailable.
type BusyError struct {
	// Limit is auth_service.max_in_flight.
	Limit int
	// Waited is how long the call waited.
	Waited time.Duration
	// RetryAfter is a hint for the client: the queue is full now.
	RetryAfter time.Duration
	// Cause is why the wait ended (the context's error).
	Cause error
}

// Error says why no call was made.
func (e *BusyError) Error() string {
	return fmt.Sprintf("%d calls to the auth service already in flight; gave up after waiting %s for a slot: %v",
		e.Limit, e.Waited.Round(time.Millisecond), e.Cause)
}

// Unwrap makes the error match models.ErrAuthUnavailable and the cause.
func (e *BusyError) Unwrap() []error { return []error{models.ErrAuthUnavailable, e.Cause} }

// busyRetryAfter is the Retry-After of a call refused by the bulkhead.
const busyRetryAfter = time.Second

// RetryAfter returns how long a client refused because of err should wait
// before trying again, when err carries such a hint (an open circuit or a
// full bulkhead).
func RetryAfter(err error) (time.Duration, bool) {
	var open *CircuitOpenError
	if errors.As(err, &open) {
		return open.RetryAfter, true
	}
	var busy *BusyError
	if errors.As(err, &busy) {
		return busy.RetryAfter, true
	}
	return 0, false
}

// bulkhead bounds the calls home in flight at once. Waiters are admitted in
// FIFO order (semaphore.Weighted queues them); a waiter leaves the queue
// when its context ends.
type bulkhead struct {
	sem      *semaphore.Weighted
	limit    int
	inFlight atomic.Int64
}

func newBulkhead(limit int) *bulkhead {
	return &bulkhead{sem: semaphore.NewWeighted(int64(limit)), limit: limit}
}

// acquire waits for a slot until ctx ends, telling obs (when not nil); the
// returned release must be called once the call is done.
func (b *bulkhead) acquire(ctx context.Context, obs BulkheadObserver) (release func(), err error) {
	release, _, err = b.acquireTimed(ctx, obs)
	return release, err
}

// acquireTimed is acquire that also says how long the call queued (0: a
// slot was free at once).
func (b *bulkhead) acquireTimed(ctx context.Context, obs BulkheadObserver) (release func(), waited time.Duration, err error) {
	start := time.Now()
	if b.sem.TryAcquire(1) {
		return b.admitted(0, obs), 0, nil
	}
	if err := b.sem.Acquire(ctx, 1); err != nil {
		waited := time.Since(start)
		if obs != nil {
			obs.BulkheadWait(waited, false)
		}
		return nil, waited, &BusyError{Limit: b.limit, Waited: waited, RetryAfter: busyRetryAfter, Cause: err}
	}
	waited = time.Since(start)
	return b.admitted(waited, obs), waited, nil
}

// admitted counts a call that got its slot after waiting waited, and
// returns its release.
func (b *bulkhead) admitted(waited time.Duration, obs BulkheadObserver) (release func()) {
	if obs != nil {
		obs.BulkheadWait(waited, true)
	}
	b.inFlight.Add(1)
	if obs != nil {
		obs.BulkheadInFlight(1)
	}
	return func() {
		b.inFlight.Add(-1)
		if obs != nil {
			obs.BulkheadInFlight(-1)
		}
		b.sem.Release(1)
	}
}

// errDeadlineSpent is the cause of a BusyError for a call that got its
// slot with too little of its caller's deadline left to be worth making.
var errDeadlineSpent = errors.New("its deadline was nearly spent in the queue")
