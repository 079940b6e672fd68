package stripeapi

import (
	"context"
	"sync"
	"time"
)

// pacer spaces requests out once Stripe has said they come too fast (HTTP
// 429). Every stream's requests go through the client's one pacer, so a rate
// limit slows the whole read down instead of each stream retrying into the
// limit on its own until its attempts run out. Unpaced until the first 429;
// each burst of 429s halves the pace, each success speeds it up a little.
type pacer struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu       sync.Mutex
	interval time.Duration // least time between two request starts; 0: unpaced
	next     time.Time     // earliest start of the next request
	slowed   time.Time     // when a 429 last slowed the pace
}

// Pacing bounds.
const (
	// 50 ms (20 requests/s): below Stripe's test-mode read limit of 25/s,
	// the lower of its two limits.
	paceFirst = 50 * time.Millisecond
	// 2 s: slower than this, the retries' backoff does the waiting.
	paceSlowest = 2 * time.Second
	// 1 s: Stripe counts requests per second, so the 429s of concurrent
	// requests within a second are one burst and slow the pace once.
	paceBurst = time.Second
	// Each success shortens the interval by 1/paceRecovery: about 14
	// successes undo one halving, 45 bring paceFirst down to paceOff.
	paceRecovery = 20
	// Below 5 ms (200 requests/s, past Stripe's live-mode limit) pacing
	// stops.
	paceOff = 5 * time.Millisecond
)

func newPacer(sleep func(context.Context, time.Duration) error) *pacer {
	return &pacer{now: time.Now, sleep: sleep}
}

// wait holds a request back until its turn.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	if p.interval == 0 {
		p.mu.Unlock()
		return nil
	}
	now := p.now()
	start := p.next
	if start.Before(now) {
		start = now
	}
	p.next = start.Add(p.interval)
	p.mu.Unlock()
	if d := start.Sub(now); d > 0 {
		return p.sleep(ctx, d)
	}
	return nil
}

// rateLimited slows the pace down after a 429, once per burst.
func (p *pacer) rateLimited() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.interval > 0 && now.Sub(p.slowed) < paceBurst {
		return
	}
	p.slowed = now
	p.interval = min(max(paceFirst, 2*p.interval), paceSlowest)
}

// succeeded speeds the pace up a little after a request that was not rate
// limited.
func (p *pacer) succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.interval == 0 {
		return
	}
	p.interval -= p.interval / paceRecovery
	if p.interval < paceOff {
		p.interval = 0
	}
}

// current is the least time between two request starts (0: unpaced).
func (p *pacer) current() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interval
}
