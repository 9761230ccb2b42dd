// Package health decides readiness: named checks (the database, the auth
// service, and any a later feature registers) are probed in the background,
// never per request, and /readyz reads the last results.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Probe checks one dependency; nil means it answered.
type Probe func(ctx context.Context) error

// Checker probes its checks every interval/2 and calls a check ready while
// it answered within the last interval. Register checks with Add before
// Start; Stop ends the probing goroutines and waits for them.
type Checker struct {
	interval time.Duration
	log      *slog.Logger
	// onChange, when set, is told when a check becomes ready or not.
	onChange func(name string, ready bool)

	mu      sync.Mutex
	checks  []*check
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

type check struct {
	name    string
	probe   Probe
	lastOK  time.Time // last answer
	lastErr error     // last probe's error
	probed  bool
	ready   bool // as last reported to OnChange
	// reported is set once the first probe's verdict was logged, so a check
	// failing from the start is reported at once, not only when it changes.
	reported bool
}

// New returns a Checker; interval is readiness_interval.
//
// onChange, when not nil, is told when a check becomes ready or not.
func New(interval time.Duration, log *slog.Logger, onChange func(name string, ready bool)) *Checker {
	return &Checker{interval: interval, log: log, onChange: onChange}
}

// Add registers a check. It panics after Start: checks are wiring, fixed
// before the gateway serves.
func (c *Checker) Add(name string, p Probe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		panic("health: Add after Start")
	}
	c.checks = append(c.checks, &check{name: name, probe: p})
}

// Start probes every check at once and then every interval/2, one
// goroutine per check, until Stop.
func (c *Checker) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started = true
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	for _, ch := range c.checks {
		c.wg.Go(func() { c.loop(ctx, ch) })
	}
}

// Stop ends probing and waits for in-flight probes to return.
func (c *Checker) Stop() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
}

func (c *Checker) loop(ctx context.Context, ch *check) {
	period := max(c.interval/2, 10*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, c.interval)
		err := ch.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.record(ch, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Checker) record(ch *check, err error) {
	c.mu.Lock()
	ch.probed, ch.lastErr = true, err
	if err == nil {
		ch.lastOK = time.Now()
	}
	c.mu.Unlock()
	c.notify(ch)
}

// Answered records that a dependency answered outside the probe (a real
// call home, say), so readiness follows traffic as well as probes.
func (c *Checker) Answered(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.checks {
		// Only refresh a check that is passing: clearing a failure is the
		// probe's job, so one lucky call does not hide an outage.
		if ch.name == name && ch.probed && ch.lastErr == nil {
			ch.lastOK = time.Now()
		}
	}
}

// notify reports a change of a check's readiness.
func (c *Checker) notify(ch *check) {
	c.mu.Lock()
	ok, why := c.stateLocked(ch, time.Now())
	changed := ok != ch.ready || !ch.reported
	ch.ready, ch.reported = ok, true
	c.mu.Unlock()
	if !changed {
		return
	}
	if c.onChange != nil {
		c.onChange(ch.name, ok)
	}
	if ok {
		c.log.Info("readiness check passes", "check", ch.name)
	} else {
		c.log.Warn("readiness check fails", "check", ch.name, "why", why, "err", ch.lastErr)
	}
}

// stateLocked says whether a check passes and, when not, why in words
// safe to show to anyone (no addresses or error text).
func (c *Checker) stateLocked(ch *check, now time.Time) (bool, string) {
	switch {
	case !ch.probed:
		return false, "not checked yet"
	case ch.lastErr != nil:
		return false, "not answering"
	case now.Sub(ch.lastOK) > c.interval:
		return false, fmt.Sprintf("no answer in the last %s", c.interval)
	}
	return true, "ok"
}

// Status returns whether every check passes, and each check's state:
// "ok" or why not.
func (c *Checker) Status() (ready bool, checks map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	ready = true
	checks = make(map[string]string, len(c.checks))
	for _, ch := range c.checks {
		ok, why := c.stateLocked(ch, now)
		ready = ready && ok
		checks[ch.name] = why
	}
	return ready, checks
}
