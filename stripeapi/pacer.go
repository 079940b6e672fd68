package stripeapi

import (
	"context"
	"strings"
	"sync"
	"time"
)

// pacer spaces out the requests of the whole process: every stream's
// requests go through the client's one pacer. It schedules one request per
// `interval`: the budget (1 / requests per second) while Stripe accepts
// them, longer after a 429, coming back to the budget gradually as requests
// succeed; after a 429 with Retry-After, every request waits for it. A
// turn nobody was ready to take is not lost at once: the turns of the last
// paceCatchUp can be taken late, so that the moments when no request is
// ready (every page in flight) do not pull the rate under the budget. Over
// any stretch of time, at most paceCatchUp's worth of requests more than
// the budget go out.
type pacer struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu       sync.Mutex
	budget   time.Duration // least interval: 1 / the rate allowed; 0: unpaced
	interval time.Duration // current interval; 0: unpaced
	next     time.Time     // earliest start of the next request
	slowed   time.Time     // when a 429 last slowed the pace
	hold     time.Time     // no request starts before: a 429's Retry-After
}

// Default budgets: Stripe allows about 100 read requests per second with
// live keys and 25 with test keys; the defaults leave headroom for the
// account's own traffic.
const (
	DefaultLiveRate = 90
	DefaultTestRate = 20
)

// DefaultRate is the request budget for a key: its mode read from its
// prefix (sk_live_, rk_live_ or sk_test_, rk_test_).
func DefaultRate(key string) float64 {
	if strings.Contains(key, "_live_") {
		return DefaultLiveRate
	}
	return DefaultTestRate
}

// Pacing bounds.
const (
	// 50 ms (20 requests/s): the first slowdown of an unpaced client,
	// below Stripe's test-mode read limit of 25/s.
	paceFirst = 50 * time.Millisecond
	// 2 s: slower than this, the retries' backoff does the waiting.
	paceSlowest = 2 * time.Second
	// 1 s: Stripe counts requests per second, so the 429s of concurrent
	// requests within a second are one burst and slow the pace once.
	paceBurst = time.Second
	// Each success shortens the interval by 1/paceRecovery: about 14
	// successes undo one halving of the rate.
	paceRecovery = 20
	// An unpaced client stops pacing again below 5 ms (200 requests/s,
	// past Stripe's live-mode limit).
	paceOff = 5 * time.Millisecond
	// 100 ms of missed turns can be caught up: within any second, at most
	// a tenth more than the budget, which the default budgets' headroom
	// under Stripe's limits covers (90 + 9 < 100, 20 + 2 < 25).
	paceCatchUp = 100 * time.Millisecond
)

// newPacer paces at rate requests per second; 0 leaves requests unpaced
// until a 429.
func newPacer(rate float64, sleep func(context.Context, time.Duration) error) *pacer {
	p := &pacer{now: time.Now, sleep: sleep}
	if rate > 0 {
		p.budget = time.Duration(float64(time.Second) / rate)
		p.interval = p.budget
	}
	return p
}

// wait holds a request back until its turn. A request whose turn came
// during a Retry-After that a 429 announced while it waited takes a new
// turn after it.
func (p *pacer) wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.interval == 0 {
			p.mu.Unlock()
			return nil
		}
		now := p.now()
		start := p.next
		if earliest := now.Add(-paceCatchUp); start.Before(earliest) {
			start = earliest
		}
		p.next = start.Add(p.interval)
		p.mu.Unlock()
		if d := start.Sub(now); d > 0 {
			if err := p.sleep(ctx, d); err != nil {
				return err
			}
		}
		p.mu.Lock()
		held := p.hold.After(p.now())
		p.mu.Unlock()
		if !held {
			return nil
		}
	}
}

// rateLimited slows the pace down after a 429, once per burst. No request
// of the process starts before retryAfter (Stripe's Retry-After, 0 when it
// sent none) has passed, and the turns missed before do not count: Stripe
// said too many.
func (p *pacer) rateLimited(retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	hold := now.Add(retryAfter)
	if p.next.Before(hold) {
		p.next = hold
	}
	if p.hold.Before(hold) {
		p.hold = hold
	}
	if p.interval > 0 && now.Sub(p.slowed) < paceBurst {
		return
	}
	p.slowed = now
	p.interval = min(max(paceFirst, 2*p.interval), paceSlowest)
}

// succeeded speeds the pace up a little after a request that was not rate
// limited, back to the budget at most.
func (p *pacer) succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.interval <= p.budget {
		return
	}
	p.interval -= p.interval / paceRecovery
	switch {
	case p.interval < p.budget:
		p.interval = p.budget
	case p.budget == 0 && p.interval < paceOff:
		p.interval = 0
	}
}

// current is the least time between two request starts (0: unpaced).
func (p *pacer) current() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interval
}
