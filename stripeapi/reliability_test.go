package stripeapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"source-stripe/internal/jsonscan"
	"strings"
	"sync"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/protocol"
)

func TestRetryDecisionOnMalformedAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		err    error
		retry  bool
	}{
		{"200 that is not JSON", 200, http.Header{}, &ResponseError{Problem: "the answer is not JSON"}, false},
		{"200 not JSON, Stripe says retry", 200, http.Header{"Stripe-Should-Retry": {"true"}}, &ResponseError{}, true},
		{"200 cut off mid-JSON", 200, http.Header{}, errors.New("Couldn't deserialize JSON: unexpected end of JSON input"), true},
		{"200 body stalled past the timeout", 200, http.Header{}, fmt.Errorf("no complete response within 1s: %w", errTimeout), true},
		{"404 body stalled past the timeout", 404, http.Header{}, fmt.Errorf("no complete response within 1s: %w", errTimeout), true},
		{"HTML 502 from a proxy", 502, http.Header{}, errors.New("Couldn't deserialize JSON (response status: 502)"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryDecision(tc.status, tc.header, tc.err); got.retry != tc.retry {
				t.Fatalf("retry = %v, want %v (%s)", got.retry, tc.retry, got.reason)
			}
		})
	}
}

// TestClientRejectsMalformedPages: every answer that breaks a promise of
// Stripe's lists is a ResponseError at once, not retried, that says what is
// wrong, so that no stream loops, crashes or emits something that is not a
// record.
func TestClientRejectsMalformedPages(t *testing.T) {
	for _, tc := range []struct {
		name, body, after, want string
		contentType             string
	}{
		{"HTML instead of JSON", "<html><body>Welcome to nginx!</body></html>", "", `not JSON (Content-Type "text/html", starting "<html><body>Welcome`, "text/html"},
		{"plain text", "OK", "", "not JSON", "text/plain"},
		{"not a list", `{"object":"charge","id":"ch_1"}`, "", "not a list", ""},
		{"list without data", `{"object":"list","has_more":false}`, "", "not a list", ""},
		{"data is null", `{"object":"list","data":null,"has_more":false}`, "", "not a list", ""},
		{"has_more with an empty page", `{"object":"list","data":[],"has_more":true}`, "", "empty but has_more is true", ""},
		{"item not an object", `{"object":"list","data":[1],"has_more":false}`, "", `item 0 of the page is not an object with an "id": 1`, ""},
		{"item without id", `{"object":"list","data":[{"id":"ch_1"},{"amount":5}],"has_more":false}`, "", "item 1 of the page", ""},
		{"item with a numeric id", `{"object":"list","data":[{"id":7}],"has_more":false}`, "", "item 0 of the page", ""},
		{"the same id twice in a page", `{"object":"list","data":[{"id":"ch_2"},{"id":"ch_2"}],"has_more":false}`, "", "lists ch_2 twice", ""},
		{"the page after ch_2 is the same page", `{"object":"list","data":[{"id":"ch_3"},{"id":"ch_2"}],"has_more":true}`, "ch_2", "the page after ch_2 lists ch_2 again", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			srv, n := flaky(t, status(200, tc.body, "Content-Type", ct))
			var slept []time.Duration
			q := url.Values{}
			if tc.after != "" {
				q.Set("starting_after", tc.after)
			}
			_, err := newTestClient(srv, &slept).ListPage(context.Background(), "/v1/charges", q)
			var rerr *ResponseError
			if !errors.As(err, &rerr) {
				t.Fatalf("want a ResponseError, got %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "req_200") {
				t.Fatalf("error %q does not say %q and name the request", err, tc.want)
			}
			if n.Load() != 1 {
				t.Fatalf("%d attempts: a malformed answer is not retried", n.Load())
			}
			perr := Classify(err, "charges")
			if perr.FailureType != protocol.FailureTransient || perr.Stream != "charges" ||
				!strings.Contains(perr.Message, "malformed response for stream charges (request req_200)") {
				t.Fatalf("classified as %+v", perr)
			}
		})
	}
}

// TestClientAcceptsWellFormedEdgePages: what checkPage must not refuse.
func TestClientAcceptsWellFormedEdgePages(t *testing.T) {
	for _, body := range []string{
		`{"object":"list","data":[],"has_more":false}`,
		`{"object":"list","data":[{"id":"ch_3"},{"id":"ch_1"}],"has_more":true,"url":"/v1/charges"}`,
		`  {"object":"list","data":[ {"id":"ch_1", "nested":{"id":"ch_1"}} ],"has_more":false}`,
	} {
		srv, _ := flaky(t, status(200, body))
		var slept []time.Duration
		if _, err := newTestClient(srv, &slept).ListPage(context.Background(), "/v1/charges", url.Values{"starting_after": {"ch_9"}}); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// TestErrorsNeverShowTheKey: a server may echo anything, the key included;
// no error text and no retry warning repeats it.
func TestErrorsNeverShowTheKey(t *testing.T) {
	echo := "Invalid API Key provided: " + key
	for _, tc := range []struct {
		name string
		resp func(w http.ResponseWriter)
	}{
		{"401 message", status(401, `{"error":{"type":"invalid_request_error","message":"`+echo+`"}}`)},
		{"403 message", status(403, `{"error":{"type":"invalid_request_error","message":"`+echo+`"}}`)},
		{"error body without an error object", status(400, `{"detail":"`+echo+`"}`)},
		{"HTML 200", status(200, "<html>"+echo+"</html>", "Content-Type", "text/html")},
		{"HTML 503 retried", status(503, "<html>"+echo+"</html>", "Content-Type", "text/html")},
		{"200 cut off mid-JSON", status(200, `{"object":"list","data":[{"id":"`+echo)},
		{"long error body", status(500, `{"detail":"`+strings.Repeat("x", 1000)+echo+`"}`)},
		{"HTML 200 starting with the key", status(200, key+"<html>", "Content-Type", "text/html")},
		{"HTML 200 cutting the key", status(200, "<p>"+key+"</p>", "Content-Type", "text/html")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := flaky(t, tc.resp)
			var warnings []string
			c := New(Options{APIKey: key, BaseURL: srv.URL, MaxAttempts: 2,
				Sleep: func(context.Context, time.Duration) error { return nil },
				Warn:  func(msg string) { warnings = append(warnings, msg) }})
			_, err := c.ListPage(context.Background(), "/v1/charges", nil)
			if err == nil {
				t.Fatal("no error")
			}
			texts := append([]string{err.Error(), Classify(err, "charges").Error()}, warnings...)
			for _, text := range texts {
				// The whole key, or a long piece of what follows its prefix.
				if strings.Contains(text, key) || strings.Contains(text, key[len("sk_test_"):len(key)-6]) {
					t.Fatalf("the key appears in %q", text)
				}
				if len(text) > 2*maxErrorText+200 {
					t.Fatalf("an error of %d bytes: a body was quoted whole", len(text))
				}
			}
		})
	}
}

func TestKeyAHeaderCannotCarry(t *testing.T) {
	for _, bad := range []string{"sk_test_abc\n", "sk_test_ab c", "sk_test_abc\x00", "sk_test_é"} {
		srv, n := flaky(t, status(200, okPage))
		var slept []time.Duration
		c := New(Options{APIKey: bad, BaseURL: srv.URL, Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
		_, err := c.ListPage(context.Background(), "/v1/charges", nil)
		perr := Classify(err, "charges")
		if perr.FailureType != protocol.FailureConfig || perr.Stream != "" || !strings.Contains(perr.Message, "'client_secret'") {
			t.Errorf("%q: got %+v", bad, perr)
		}
		if n.Load() != 0 || len(slept) != 0 {
			t.Errorf("%q: %d requests, %d waits: a key that cannot be sent is not retried", bad, n.Load(), len(slept))
		}
	}
}

// TestRetriesRunOut: the error after the last attempt names the stream, the
// status, the last request id and the number of attempts.
func TestRetriesRunOut(t *testing.T) {
	srv, n := flaky(t, status(502, "<html>Bad Gateway</html>", "Content-Type", "text/html"))
	var slept []time.Duration
	_, err := newTestClient(srv, &slept).ListPage(context.Background(), "/v1/charges", nil)
	perr := Classify(err, "charges")
	want := "Stripe kept failing for stream charges (HTTP 502, request req_502, 4 attempts)"
	if n.Load() != 4 || perr.FailureType != protocol.FailureTransient || perr.Stream != "charges" || !strings.HasPrefix(perr.Message, want) {
		t.Fatalf("after %d attempts: %+v; want a message starting %q", n.Load(), perr, want)
	}
	var backoffs []time.Duration
	for _, d := range slept {
		if d >= backoffBase/2 {
			backoffs = append(backoffs, d)
		}
	}
	// Capped exponential with equal jitter: attempt n waits within
	// [base<<(n-1) / 2, base<<(n-1)], so the waits never shrink.
	if len(backoffs) != 3 || !slices.IsSorted(backoffs) {
		t.Fatalf("backoffs %v: want 3 growing waits", backoffs)
	}
}

func TestPacer(t *testing.T) {
	now := time.Unix(1700000000, 0)
	var slept []time.Duration
	p := &pacer{now: func() time.Time { return now }, sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		now = now.Add(d)
		return nil
	}}
	ctx := context.Background()
	for range 10 {
		p.wait(ctx)
	}
	if len(slept) != 0 {
		t.Fatalf("unpaced before any 429, yet waited %v", slept)
	}
	p.rateLimited(0)
	for range 5 {
		p.wait(ctx)
	}
	// The first request goes at once, the next ones one interval apart.
	if !slices.Equal(slept, []time.Duration{paceFirst, paceFirst, paceFirst, paceFirst}) {
		t.Fatalf("after a 429, waits %v; want 4 of %s", slept, paceFirst)
	}
	// More 429s of the same burst (within paceBurst) slow it once.
	p.rateLimited(0)
	p.rateLimited(0)
	if p.current() != paceFirst {
		t.Fatalf("429s within one burst pace at %s, want %s", p.current(), paceFirst)
	}
	now = now.Add(paceBurst)
	p.rateLimited(0)
	if p.current() != 2*paceFirst {
		t.Fatalf("a second burst paces at %s, want %s", p.current(), 2*paceFirst)
	}
	for range 20 {
		now = now.Add(paceBurst)
		p.rateLimited(0)
	}
	if p.current() != paceSlowest {
		t.Fatalf("pace %s, want at most %s", p.current(), paceSlowest)
	}
	for range 200 { // from paceSlowest: about 120
		p.succeeded()
	}
	if p.current() != 0 {
		t.Fatalf("after 200 successes the pace is still %s", p.current())
	}
}

// TestPacerBudget: with a budget, requests are spaced to it from the
// first; a 429 slows them, and successes bring the pace back to the budget,
// never faster.
func TestPacerBudget(t *testing.T) {
	now := time.Unix(1700000000, 0)
	var slept []time.Duration
	p := newPacer(20, func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		now = now.Add(d)
		return nil
	})
	p.now = func() time.Time { return now }
	ctx := context.Background()
	waits := func(n int) []time.Duration {
		slept = nil
		for range n {
			p.wait(ctx)
		}
		return slept
	}
	fifty := 50 * time.Millisecond
	// The first request and the 2 turns of the paceCatchUp (100 ms) before
	// it go at once; then one per 50 ms.
	if got := waits(6); !slices.Equal(got, []time.Duration{fifty, fifty, fifty}) {
		t.Fatalf("at 20/s, waits %v; want 3 at once, then 3 of 50ms", got)
	}
	// A lull of one missed turn: it is taken at once.
	now = now.Add(fifty + fifty)
	if got := waits(4); !slices.Equal(got, []time.Duration{fifty, fifty}) {
		t.Fatalf("after a lull of 1 turn, waits %v; want 2 at once, then 2 of 50ms", got)
	}
	// A long lull gives no more than paceCatchUp's turns.
	now = now.Add(time.Minute)
	if got := waits(4); !slices.Equal(got, []time.Duration{fifty}) {
		t.Fatalf("after a minute's lull, waits %v; want 3 at once, then 1 of 50ms", got)
	}
	// A 429 slows the pace and forfeits the missed turns.
	now = now.Add(time.Minute)
	p.rateLimited(0)
	if p.current() != 100*time.Millisecond {
		t.Fatalf("after a 429 the pace is %s, want 100ms", p.current())
	}
	if got := waits(3); !slices.Equal(got, []time.Duration{100 * time.Millisecond, 100 * time.Millisecond}) {
		t.Fatalf("after a 429, waits %v; want the first at once, then 2 of 100ms", got)
	}
	// A 429 with Retry-After holds every request until then.
	now = now.Add(time.Minute)
	p.rateLimited(3 * time.Second)
	if got := waits(2); !slices.Equal(got, []time.Duration{3 * time.Second, p.current()}) {
		t.Fatalf("after Retry-After: 3, waits %v; want 3s, then the pace (%s)", got, p.current())
	}
	for range 100 {
		p.succeeded()
	}
	if p.current() != 50*time.Millisecond {
		t.Fatalf("after successes the pace is %s, want the budget's 50ms", p.current())
	}
	if DefaultRate("sk_live_x") != 90 || DefaultRate("rk_live_x") != 90 || DefaultRate("sk_test_x") != 20 || DefaultRate("rk_test_x") != 20 {
		t.Fatal("default budgets by key mode")
	}
}

// TestRateLimitPacesEveryStream: after a 429 on one path, requests on other
// paths, and through a WithAccount copy, are spaced out too.
func TestRateLimitPacesEveryStream(t *testing.T) {
	var mu sync.Mutex
	first := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		limited := first && r.URL.Path == "/v1/charges"
		first = first && !limited
		mu.Unlock()
		if limited {
			status(429, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`, "Retry-After", "2")(w)
			return
		}
		status(200, okPage)(w)
	}))
	defer srv.Close()
	var slept []time.Duration
	c := New(Options{APIKey: key, BaseURL: srv.URL, Sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}})
	// A request on another path starts after the 429's Retry-After too.
	// (The waits are not slept: the pacer still holds when it comes.)
	if _, err := c.ListPage(context.Background(), "/v1/charges", nil); err != nil {
		t.Fatal(err)
	}
	slept = nil
	if _, err := c.WithAccount("acct_2").ListPage(context.Background(), "/v1/customers", nil); err != nil {
		t.Fatal(err)
	}
	if len(slept) != 1 || slept[0] < time.Second {
		t.Fatalf("a request on another path after a 429 with Retry-After: 2 waited %v; want about 2s", slept)
	}
	if c.WithAccount("acct_2").pacer != c.pacer || c.pacer.current() == 0 {
		t.Fatalf("after a 429 the pace is %s; copies share the pacer: %v", c.pacer.current(), c.WithAccount("acct_2").pacer == c.pacer)
	}
}

// TestClientRidesOutFaults reads every list of a fake Stripe that fails 5 %
// of requests at random in every way a network and a proxy can, with
// responses slower than the client's per-request timeout among them, and
// gets every object exactly once.
func TestClientRidesOutFaults(t *testing.T) {
	const timeout = 150 * time.Millisecond
	fake := fakestripe.New(fakestripe.WithFaults(fakestripe.FaultPlan{
		Rate: 0.05, Seed: 11, Slow: 2 * timeout,
		BurstEvery: 150 * time.Millisecond, BurstLength: 10 * time.Millisecond,
	}))
	defer fake.Close()
	fake.Seed(fakestripe.DefaultDataset())
	var mu sync.Mutex
	var warnings []string
	// Waits are cut to 20 ms: real enough that eight attempts outlast a
	// 10 ms burst of 429s however fast the machine, short enough for a test.
	c := New(Options{APIKey: fakestripe.DefaultKey, BaseURL: fake.URL(), RequestTimeout: timeout,
		Sleep: func(ctx context.Context, d time.Duration) error {
			return sleepContext(ctx, min(d, 20*time.Millisecond))
		},
		Warn: func(msg string) { mu.Lock(); warnings = append(warnings, msg); mu.Unlock() }})

	kinds := []string{fakestripe.KindCharge, fakestripe.KindCustomer, fakestripe.KindInvoice, fakestripe.KindEvent,
		fakestripe.KindSubscription, fakestripe.KindBalanceTransaction, fakestripe.KindPaymentIntent}
	var wg sync.WaitGroup
	for _, kind := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fakestripe.ListPath(kind)
			q := url.Values{"limit": {"2"}} // many requests: many faults
			if kind == fakestripe.KindSubscription {
				q.Set("status", "all")
			}
			var got []string
			for {
				page, err := c.ListPage(context.Background(), path, q)
				if err != nil {
					t.Errorf("%s: %v", kind, err)
					return
				}
				for _, raw := range page.Data {
					got = append(got, jsonscan.String(raw, "id"))
				}
				if !page.HasMore {
					break
				}
				q.Set("starting_after", got[len(got)-1])
			}
			want := fake.IDs(kind)
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: read %d objects, the fake holds %d", kind, len(got), len(want))
			}
		}()
	}
	wg.Wait()
	injected := fake.InjectedFaults()
	for _, kind := range fakestripe.AllFaultKinds() {
		if injected[kind] == 0 {
			t.Errorf("no %s fault was injected (%v): the test proves less than it says", kind, injected)
		}
	}
	timedOut := 0
	for _, w := range warnings {
		if strings.Contains(w, "no complete response within") {
			timedOut++
		}
	}
	if timedOut == 0 {
		t.Errorf("no request timed out; injected %v", injected)
	}
	t.Logf("%d requests, faults %v, %d retries", fake.RequestCount(), injected, len(warnings))
}

// TestRetryAfterHoldsWaitingRequests: a request already waiting for its
// turn when a 429 with Retry-After arrives waits for the Retry-After too.
func TestRetryAfterHoldsWaitingRequests(t *testing.T) {
	now := time.Unix(1700000000, 0)
	var p *pacer
	var waited time.Duration
	first := true
	p = newPacer(10, func(_ context.Context, d time.Duration) error {
		if first { // another request gets a 429 while this one sleeps
			first = false
			p.rateLimited(2 * time.Second)
		}
		waited += d
		now = now.Add(d)
		return nil
	})
	p.now = func() time.Time { return now }
	p.next = now.Add(100 * time.Millisecond) // this request's turn is 100 ms away
	if err := p.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited < 2*time.Second {
		t.Fatalf("waited %s; want at least the 2s Retry-After that came while it waited", waited)
	}
}
