package stripeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"source-stripe/protocol"
)

func TestRetryDecision(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		err    error
		retry  bool
	}{
		{"connection reset", 0, nil, errors.New("read: connection reset by peer"), true},
		{"timeout", 0, nil, errTimeout, true},
		{"rate limited", 429, h(), boom, true},
		{"conflict", 409, h(), boom, true},
		{"internal error", 500, h(), boom, true},
		{"bad gateway", 502, h(), boom, true},
		{"unavailable", 503, h(), boom, true},
		{"gateway timeout", 504, h(), boom, true},
		{"truncated body", 200, h(), errors.New("unexpected EOF"), true},
		{"should retry true on 400", 400, h("Stripe-Should-Retry", "true"), boom, true},
		{"should retry false on 500", 500, h("Stripe-Should-Retry", "false"), boom, false},
		{"should retry false on 429", 429, h("Stripe-Should-Retry", "false"), boom, false},
		{"bad request", 400, h(), boom, false},
		{"invalid key", 401, h(), boom, false},
		{"no permission", 403, h(), boom, false},
		{"not found", 404, h(), boom, false},
		{"not implemented", 501, h(), boom, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryDecision(tc.status, tc.header, tc.err); got.retry != tc.retry {
				t.Fatalf("retry = %v, want %v (%s)", got.retry, tc.retry, got.reason)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt < 20; attempt++ {
		d := backoff(attempt, 0)
		if d < backoffBase/2 || d > backoffCap {
			t.Fatalf("attempt %d: backoff %s out of [%s, %s]", attempt, d, backoffBase/2, backoffCap)
		}
	}
	if d := backoff(1, 7*time.Second); d != 7*time.Second {
		t.Fatalf("Retry-After 7s: waited %s", d)
	}
}

const key = "sk_test_secret_0123456789"

// flaky answers each request with the next of its responses.
func flaky(t *testing.T, responses ...func(w http.ResponseWriter)) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key || r.Header.Get("Stripe-Version") != "2023-10-16" {
			t.Errorf("request without the key or the pinned version: %v", r.Header)
		}
		i := int(n.Add(1)) - 1
		if i >= len(responses) {
			i = len(responses) - 1
		}
		responses[i](w)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func status(code int, body string, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Request-Id", fmt.Sprintf("req_%d", code))
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

const okPage = `{"object":"list","data":[{"id":"ch_1","created":1}],"has_more":false,"url":"/v1/charges"}`

// newTestClient records the client's waits instead of sleeping; the
// pacer's clock moves on by each wait, as if it had been slept.
func newTestClient(srv *httptest.Server, slept *[]time.Duration) *Client {
	var mu sync.Mutex
	clock := time.Now()
	c := New(Options{
		APIKey: key, BaseURL: srv.URL, MaxAttempts: 4, RequestTimeout: 2 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			*slept = append(*slept, d)
			clock = clock.Add(d)
			return nil
		},
	})
	c.pacer.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	return c
}

func TestClientRetriesThenSucceeds(t *testing.T) {
	truncated := func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "500")
		w.WriteHeader(200)
		fmt.Fprint(w, `{"object":"list","data":[{"id":`)
	}
	srv, n := flaky(t,
		status(502, "<html>Bad Gateway</html>"),
		status(429, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`, "Retry-After", "3"),
		truncated,
		status(200, okPage))
	var slept []time.Duration
	page, err := newTestClient(srv, &slept).ListPage(context.Background(), "/v1/charges", url.Values{"limit": {"100"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.HasMore || n.Load() != 4 {
		t.Fatalf("page %+v after %d requests", page, n.Load())
	}
	// Three backoffs (at least backoffBase/2 each), the second honouring
	// Retry-After: 3; after the 429 the pacer spaces requests by paceFirst.
	var backoffs []time.Duration
	for _, d := range slept {
		if d >= backoffBase/2 {
			backoffs = append(backoffs, d)
		} else if d > paceFirst {
			t.Fatalf("a wait of %s is neither a backoff nor the pacer's", d)
		}
	}
	if len(backoffs) != 3 || backoffs[1] < 3*time.Second {
		t.Fatalf("waits %v: want 3 backoffs, the second honouring Retry-After: 3", slept)
	}
}

func TestClientGivesUp(t *testing.T) {
	srv, n := flaky(t, status(503, `{"error":{"type":"api_error","message":"down"}}`))
	var slept []time.Duration
	_, err := newTestClient(srv, &slept).ListPage(context.Background(), "/v1/charges", nil)
	if n.Load() != 4 {
		t.Fatalf("%d attempts, want 4", n.Load())
	}
	perr := Classify(err, "charges")
	if perr.FailureType != protocol.FailureTransient || perr.Stream != "charges" || !strings.Contains(err.Error(), "req_503") || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("got %v (%+v)", err, perr)
	}
}

func TestClientDoesNotRetryClientErrors(t *testing.T) {
	for code, want := range map[int]string{
		401: protocol.FailureConfig,
		403: protocol.FailureConfig,
		400: protocol.FailureSystem,
	} {
		srv, n := flaky(t, status(code, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****6789"}}`))
		var slept []time.Duration
		_, err := newTestClient(srv, &slept).ListPage(context.Background(), "/v1/charges", nil)
		if n.Load() != 1 || StatusOf(err) != code {
			t.Fatalf("HTTP %d: %d attempts, error %v", code, n.Load(), err)
		}
		if got := Classify(err, "charges").FailureType; got != want {
			t.Errorf("HTTP %d: failure type %s, want %s", code, got, want)
		}
		if strings.Contains(err.Error(), key) {
			t.Fatalf("the error shows the key: %v", err)
		}
	}
}

func TestClientRejectsNonLists(t *testing.T) {
	for _, body := range []string{`{"object":"charge","id":"ch_1"}`, `{"object":"list","has_more":false}`} {
		srv, _ := flaky(t, status(200, body))
		var slept []time.Duration
		_, err := newTestClient(srv, &slept).ListPage(context.Background(), "/v1/charges", nil)
		var rerr *ResponseError
		if !errors.As(err, &rerr) {
			t.Fatalf("%s: want a ResponseError, got %v", body, err)
		}
	}
}

func TestClientTimesOutSlowResponses(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	var slept []time.Duration
	c := New(Options{APIKey: key, BaseURL: srv.URL, MaxAttempts: 2, RequestTimeout: 50 * time.Millisecond,
		Sleep: func(context.Context, time.Duration) error { slept = append(slept, 0); return nil }})
	_, err := c.ListPage(context.Background(), "/v1/charges", nil)
	if err == nil || !strings.Contains(err.Error(), "no complete response within 50ms") || len(slept) != 1 {
		t.Fatalf("got %v after %d retries", err, len(slept))
	}
}

// TestConnectionsAreReused: rounds of 40 concurrent requests reuse the
// connections of the first round instead of opening new ones.
func TestConnectionsAreReused(t *testing.T) {
	var opened atomic.Int64
	ok := status(200, okPage)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { ok(w) }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := New(Options{APIKey: key, BaseURL: srv.URL})
	const inFlight, rounds = 40, 5
	for range rounds {
		var wg sync.WaitGroup
		for range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.ListPage(context.Background(), "/v1/charges", nil); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	// Go's transport may dial a spare connection when a request races
	// another's return to the pool; with 2 idle connections kept per host,
	// each round would open 38 new ones (190 in all).
	if n, most := opened.Load(), int64(inFlight+inFlight/2); n > most {
		t.Fatalf("%d rounds of %d requests opened %d connections; want at most %d", rounds, inFlight, n, most)
	}
}
