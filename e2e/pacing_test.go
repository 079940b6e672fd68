package e2e

import (
	"net/http"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/protocol"
)

// TestDefaultBudgetForTestKeys: with no max_requests_per_second, a test key
// is paced to 20 requests/s, under the test-mode limit of 25/s the fake
// enforces: no 429 at all, and the rate stays at the budget.
func TestDefaultBudgetForTestKeys(t *testing.T) {
	e := newEnv(t, fakestripe.WithRateLimit(25))
	e.vars = append(e.vars, "SOURCE_STRIPE_REQUESTS_PER_SECOND=") // the default for the key
	start := time.Now()
	res := e.run("read", "--config", e.config(nil), "--streams", "charges,customers,coupons,plans")
	took := time.Since(start)
	requireExit(t, res, 0)
	limited, n := 0, len(e.fake.Requests())
	for _, r := range e.fake.Requests() {
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if n < 15 {
		t.Fatalf("%d requests: too few to see a rate", n)
	}
	// One request every 50 ms after the first; the pacer may also take
	// 100 ms of turns missed during a lull late (2 at 20/s).
	rate := float64(n-1-2) / took.Seconds()
	if limited > 0 || rate > 21 {
		t.Fatalf("%d requests in %s (%.1f/s), %d answered 429: want at most 20/s and no 429", n, took, rate, limited)
	}
}

// TestRateLimitedStreamsSayWhy: when Stripe's limit is lower than the
// budget, 429s slow every stream down, the streams report RATE_LIMITED while
// they wait, and the read still gets every record.
func TestRateLimitedStreamsSayWhy(t *testing.T) {
	e := newEnv(t, fakestripe.WithRateLimit(8))
	e.vars = append(e.vars, "SOURCE_STRIPE_REQUESTS_PER_SECOND=40")
	res := e.run("read", "--config", e.config(nil), "--streams", "charges,customers,invoices")
	requireExit(t, res, 0)
	for _, s := range []string{"charges", "customers", "invoices"} {
		if got, want := len(res.Records(s)), len(wantIDs(e.fake, s)); got != want {
			t.Errorf("%s: %d records, want %d", s, got, want)
		}
	}
	reported := 0
	for _, m := range res.Of(protocol.TypeTrace) {
		st := m.Trace.StreamStatus
		if st != nil && len(st.Reasons) == 1 && st.Reasons[0].Type == "RATE_LIMITED" && st.Status == protocol.StreamRunning &&
			st.Reasons[0].RateLimited != nil && st.Reasons[0].RateLimited.QuotaReset > time.Now().Add(-time.Minute).UnixMilli() {
			reported++
		}
	}
	if reported == 0 {
		t.Fatal("no stream reported RATE_LIMITED")
	}
}
