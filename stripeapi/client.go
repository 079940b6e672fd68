// Package stripeapi is the one Stripe client of the connector: every request
// goes through it. It wraps stripe-go's backend (base URL, key, pinned API
// version, Stripe-Account header, form encoding, error decoding) and adds
// what stripe-go leaves to us: retries of rate limits and truncated bodies,
// pacing after rate limits, per-request timeouts, checks that a page is a
// page, and errors that say what the user should do and never show the key.
// Stream code sees pages of raw JSON objects, never HTTP.
package stripeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"

	"source-stripe/protocol"
)

// DefaultBaseURL is Stripe's API; STRIPE_API_BASE replaces it in tests.
const DefaultBaseURL = "https://api.stripe.com"

// APIVersion is the Stripe API version every request pins, so that objects
// keep the shape the generated schemas describe.
const APIVersion = stripe.APIVersion

// Options configure a Client.
type Options struct {
	// RequestsPerSecond is the budget the client spaces requests to; 0
	// leaves them unpaced until Stripe answers 429. See DefaultRate.
	RequestsPerSecond float64
	APIKey            string
	// BaseURL replaces DefaultBaseURL.
	BaseURL string
	// Account, when set, is sent as Stripe-Account: a platform's key then
	// reads that connected account.
	Account string
	// RequestTimeout bounds one HTTP attempt, body included.
	RequestTimeout time.Duration
	// MaxAttempts bounds the attempts of one request (1 = no retry).
	MaxAttempts int
	// Sleep waits between attempts; tests replace it to avoid real waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// Warn receives a line for every retried attempt.
	Warn func(msg string)
	// HTTPClient is the client to use; its Transport is wrapped.
	HTTPClient *http.Client
}

// Client makes authenticated, paced, retried requests to Stripe.
type Client struct {
	opts    Options
	backend *stripe.BackendImplementation
	// pacer is shared by the copies WithAccount makes: one account, one
	// rate limit.
	pacer *pacer
	// keyErr is set when the key cannot be sent at all.
	keyErr error
}

// Defaults, tuned for Stripe's behaviour.
const (
	// 80 s: Stripe's own clients wait this long; list pages of 100 large
	// objects can take several seconds on busy accounts.
	defaultRequestTimeout = 80 * time.Second
	// 8 attempts with capped exponential backoff span about two minutes,
	// enough to ride out a rate-limit burst or a short outage.
	defaultMaxAttempts = 8
)

// New returns a Client.
func New(opts Options) *Client {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = defaultRequestTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepContext
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	httpClient := &http.Client{}
	if opts.HTTPClient != nil {
		*httpClient = *opts.HTTPClient
	}
	base := httpClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	httpClient.Transport = &recordingTransport{next: base}

	noRetries := int64(0) // retries are ours: see retryDecision
	noTelemetry := false
	baseURL := opts.BaseURL
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		HTTPClient:        httpClient,
		URL:               &baseURL,
		MaxNetworkRetries: &noRetries,
		EnableTelemetry:   &noTelemetry,
		// stripe-go logs errors on its own; ours are reported once, masked.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}).(*stripe.BackendImplementation)
	return &Client{opts: opts, backend: backend, pacer: newPacer(opts.RequestsPerSecond, opts.Sleep), keyErr: checkKey(opts.APIKey)}
}

// checkKey refuses a key that an HTTP header cannot carry. Without it the
// request fails before it leaves, with an error that reads like a network
// failure. Stripe keys are letters, digits and underscores.
func checkKey(key string) error {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return &protocol.Error{FailureType: protocol.FailureConfig,
				Message: "the API key contains spaces, line breaks or other characters a Stripe key never has: copy 'client_secret' (or STRIPE_API_KEY) again from the Stripe dashboard (Developers > API keys)"}
		}
	}
	return nil
}

// WithAccount returns a client that reads the connected account acct.
func (c *Client) WithAccount(acct string) *Client {
	cp := *c
	cp.opts.Account = acct
	return &cp
}

// Page is one page of a Stripe list: raw objects, newest first.
type Page struct {
	Data    []json.RawMessage
	HasMore bool
}

type listBody struct {
	stripe.APIResource
	Object  string             `json:"object"`
	Data    *[]json.RawMessage `json:"data"`
	HasMore bool               `json:"has_more"`
}

func (b *listBody) requestID() string {
	if b.LastResponse == nil {
		return ""
	}
	return b.LastResponse.RequestID
}

type rawBody struct {
	stripe.APIResource
	raw json.RawMessage
}

func (b *rawBody) UnmarshalJSON(data []byte) error {
	b.raw = append(json.RawMessage(nil), data...)
	return nil
}

// ListPage fetches one page of the list at path (e.g. "/v1/charges") with
// the given query parameters. A page that breaks the promises of Stripe's
// lists is a *ResponseError: see checkPage.
func (c *Client) ListPage(ctx context.Context, path string, query url.Values) (Page, error) {
	var body listBody
	if err := c.call(ctx, path, query, &body); err != nil {
		return Page{}, err
	}
	page, problem := checkPage(&body, query.Get("starting_after"))
	if problem != "" {
		return Page{}, &ResponseError{Path: path, Problem: c.redact(problem), RequestID: body.requestID()}
	}
	return page, nil
}

// checkPage checks what pagination relies on, so that a malformed answer
// fails the request instead of looping, crashing or emitting non-records:
// the answer is a list; every item is an object with an id, none twice; a
// page that says more follow is not empty; and the page after an object
// does not hold that object again (a server that repeats a page).
func checkPage(body *listBody, after string) (Page, string) {
	if body.Object != "list" || body.Data == nil {
		return Page{}, "the response is not a list (no \"object\":\"list\" with a \"data\" array)"
	}
	data := *body.Data
	if body.HasMore && len(data) == 0 {
		return Page{}, "the page is empty but has_more is true: the list cannot progress"
	}
	seen := make(map[string]bool, len(data))
	for i, raw := range data {
		id, ok := itemID(raw)
		if !ok {
			return Page{}, fmt.Sprintf("item %d of the page is not an object with an \"id\": %.40s", i, raw)
		}
		if seen[id] {
			return Page{}, fmt.Sprintf("the page lists %s twice", id)
		}
		seen[id] = true
	}
	if after != "" && seen[after] {
		return Page{}, fmt.Sprintf("the page after %s lists %s again: the list cannot progress", after, after)
	}
	return Page{Data: data, HasMore: body.HasMore}, ""
}

// Get fetches one object, e.g. "/v1/account".
func (c *Client) Get(ctx context.Context, path string) (json.RawMessage, error) {
	var body rawBody
	if err := c.call(ctx, path, nil, &body); err != nil {
		return nil, err
	}
	return body.raw, nil
}

// call performs a GET with retries. Every attempt waits for the pacer, gets
// its own timeout, and every failure is classified by retryDecision.
func (c *Client) call(ctx context.Context, path string, query url.Values, v stripe.LastResponseSetter) error {
	if c.keyErr != nil {
		return c.keyErr
	}
	values := &form.Values{}
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys) // stable URLs in logs and tests
	for _, k := range keys {
		for _, val := range query[k] {
			values.Add(k, val)
		}
	}
	for attempt := 1; ; attempt++ {
		if err := c.pacer.wait(ctx); err != nil {
			return err
		}
		status, header, err := c.attempt(ctx, path, values, v)
		if status == http.StatusTooManyRequests {
			c.pacer.rateLimited()
			if notice, ok := ctx.Value(rateLimitKey{}).(func(time.Time)); ok {
				notice(time.Now().Add(max(retryAfter(header), c.pacer.current())))
			}
		} else if err == nil {
			c.pacer.succeeded()
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := retryDecision(status, header, err)
		if !d.retry || attempt >= c.opts.MaxAttempts {
			var respErr *ResponseError
			if errors.As(err, &respErr) {
				return respErr
			}
			apiErr := c.newAPIError(path, status, header, err)
			if d.retry {
				apiErr.Attempts = attempt
			}
			return apiErr
		}
		wait := backoff(attempt, retryAfter(header))
		c.opts.Warn(c.redact(fmt.Sprintf("retrying GET %s in %s (attempt %d of %d): %s", path, wait.Round(time.Millisecond), attempt+1, c.opts.MaxAttempts, d.reason)))
		if err := c.opts.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (c *Client) attempt(ctx context.Context, path string, values *form.Values, v stripe.LastResponseSetter) (int, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	rec := &responseRecord{}
	params := &stripe.Params{Context: withRecord(ctx, rec)}
	if c.opts.Account != "" {
		params.StripeAccount = stripe.String(c.opts.Account)
	}
	err := c.backend.CallRaw(http.MethodGet, path, c.opts.APIKey, values, params, v)
	switch {
	case err != nil && ctx.Err() == context.DeadlineExceeded:
		err = fmt.Errorf("no complete response within %s: %w", c.opts.RequestTimeout, errTimeout)
	case err == nil && (rec.status < 200 || rec.status >= 300):
		// stripe-go takes any status below 400 for success; a 3xx that was
		// not followed (no Location) is no answer of Stripe's.
		err = &ResponseError{Path: path, RequestID: rec.header.Get("Request-Id"),
			Problem: fmt.Sprintf("HTTP %d is not an answer of Stripe's API", rec.status)}
	case err != nil && rec.status >= 200 && rec.status < 300 && rec.notJSON():
		err = &ResponseError{Path: path, RequestID: rec.header.Get("Request-Id"), Problem: c.redact(fmt.Sprintf(
			"the answer is not JSON (Content-Type %q, starting %q); if STRIPE_API_BASE is set, check that it points at Stripe's API",
			rec.header.Get("Content-Type"), rec.prefix.String()))}
	}
	return rec.status, rec.header, err
}

var errTimeout = errors.New("request timed out")

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// recordingTransport remembers the status, headers and first bytes of the
// last response of a request, because stripe-go drops them when a body is
// not JSON (an HTML 502 from a proxy, say), and the retry decision needs
// them: a 200 cut off mid-JSON is worth another try, a 200 HTML page is not.
type recordingTransport struct{ next http.RoundTripper }

type responseRecord struct {
	status int
	header http.Header
	prefix prefixBuffer
}

// notJSON reports whether the body that arrived cannot be the start of a
// JSON document (an empty or cut-off body can).
func (r *responseRecord) notJSON() bool {
	b := bytes.TrimLeft(r.prefix.buf, " \t\r\n")
	return len(b) > 0 && b[0] != '{' && b[0] != '['
}

// prefixBuffer keeps the first bytes written to it.
type prefixBuffer struct{ buf []byte }

// prefixSize: enough to tell JSON from HTML and to quote in an error.
const prefixSize = 40

func (p *prefixBuffer) Write(b []byte) (int, error) {
	if n := prefixSize - len(p.buf); n > 0 {
		p.buf = append(p.buf, b[:min(n, len(b))]...)
	}
	return len(b), nil
}

func (p *prefixBuffer) String() string { return string(p.buf) }

// teeBody copies what is read from a response body to w.
type teeBody struct {
	io.ReadCloser
	w io.Writer
}

func (t teeBody) Read(b []byte) (int, error) {
	n, err := t.ReadCloser.Read(b)
	_, _ = t.w.Write(b[:n])
	return n, err
}

type recordKey struct{}

func withRecord(ctx context.Context, r *responseRecord) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if rec, ok := req.Context().Value(recordKey{}).(*responseRecord); ok && resp != nil {
		rec.status, rec.header, rec.prefix = resp.StatusCode, resp.Header, prefixBuffer{}
		resp.Body = teeBody{ReadCloser: resp.Body, w: &rec.prefix}
	}
	return resp, err
}

type rateLimitKey struct{}

// WithRateLimitNotice returns a context whose requests call notice when
// Stripe answers 429, with when the pacer expects to send again: a stream
// reports that it is rate limited.
func WithRateLimitNotice(ctx context.Context, notice func(resetAt time.Time)) context.Context {
	return context.WithValue(ctx, rateLimitKey{}, notice)
}
