package handlers

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"jwtgate/models"
)

// throttle is a token bucket per client address, the least recently seen
// addresses forgotten first.
type throttle struct {
	every   time.Duration // one event per every; 0: off
	burst   int
	clients *lru.Cache[string, *rate.Limiter]
	now     func() time.Time
}

// newLoginThrottle builds the POST /auth/token/ limiter; nil when off.
func newLoginThrottle(cfg models.Throttle, now func() time.Time) (*throttle, error) {
	if cfg.LoginEvery == 0 {
		return nil, nil
	}
	clients, err := lru.New[string, *rate.Limiter](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("throttle.cache_size: %w", err)
	}
	return &throttle{every: cfg.LoginEvery, burst: cfg.LoginBurst, clients: clients, now: now}, nil
}

// allow takes one event for a client; when refused it says how long until
// the next one is allowed.
func (t *throttle) allow(client string) (bool, time.Duration) {
	lim, ok := t.clients.Get(client)
	if !ok {
		fresh := rate.NewLimiter(rate.Every(t.every), t.burst)
		if prev, found, _ := t.clients.PeekOrAdd(client, fresh); found {
			lim = prev // another request from the same client got here first
		} else {
			lim = fresh
		}
	}
	now := t.now()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	return false, time.Duration((1 - lim.TokensAt(now)) * float64(t.every))
}

// clientKey is the throttling key of a client address. IPv6 clients are
// keyed by their /64, the block one subscriber usually holds, so rotating
// through its addresses does not reset the limit.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// throttled limits a route per client address (gin's ClientIP: the TCP
// peer, or the forwarded client when the peer is a trusted proxy): 429
// throttled with Retry-After, as DRF's throttles answer.
func throttled(t *throttle) gin.HandlerFunc {
	return func(c *gin.Context) {
		if t == nil {
			return
		}
		ok, wait := t.allow(clientKey(c.ClientIP()))
		if ok {
			return
		}
		secs := max(1, int(math.Ceil(wait.Seconds())))
		c.Header("Retry-After", strconv.Itoa(secs))
		newAPIError(http.StatusTooManyRequests, codeThrottled,
			fmt.Sprintf("Request was throttled. Expected available in %d seconds.", secs)).abort(c)
	}
}
