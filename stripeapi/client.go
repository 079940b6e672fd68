// Package stripeapi is the one Stripe client of the connector: every request
// goes through it. It wraps stripe-go's backend (base URL, key, pinned API
// version, Stripe-Account header, form encoding, error decoding) and adds
// what stripe-go leaves to us: retries of rate limits and truncated bodies,
// per-request timeouts, and errors that say what the user should do. Stream
// code sees pages of raw JSON objects, never HTTP.
package stripeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
)

// DefaultBaseURL is Stripe's API; STRIPE_API_BASE replaces it in tests.
const DefaultBaseURL = "https://api.stripe.com"

// APIVersion is the Stripe API version every request pins, so that objects
// keep the shape the generated schemas describe.
const APIVersion = stripe.APIVersion

// Options configure a Client.
type Options struct {
	APIKey string
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
	return &Client{opts: opts, backend: backend}
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

type rawBody struct {
	stripe.APIResource
	raw json.RawMessage
}

func (b *rawBody) UnmarshalJSON(data []byte) error {
	b.raw = append(json.RawMessage(nil), data...)
	return nil
}

// ListPage fetches one page of the list at path (e.g. "/v1/charges") with
// the given query parameters.
func (c *Client) ListPage(ctx context.Context, path string, query url.Values) (Page, error) {
	var body listBody
	if err := c.call(ctx, path, query, &body); err != nil {
		return Page{}, err
	}
	if body.Object != "list" || body.Data == nil {
		return Page{}, &ResponseError{Path: path, Problem: "the response is not a list (no \"object\":\"list\" with a \"data\" array)"}
	}
	return Page{Data: *body.Data, HasMore: body.HasMore}, nil
}

// Get fetches one object, e.g. "/v1/account".
func (c *Client) Get(ctx context.Context, path string) (json.RawMessage, error) {
	var body rawBody
	if err := c.call(ctx, path, nil, &body); err != nil {
		return nil, err
	}
	return body.raw, nil
}

// call performs a GET with retries. Every attempt gets its own timeout, and
// every failure is classified by retryDecision.
func (c *Client) call(ctx context.Context, path string, query url.Values, v stripe.LastResponseSetter) error {
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
		status, header, err := c.attempt(ctx, path, values, v)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		apiErr := newAPIError(path, status, header, err)
		d := retryDecision(status, header, err)
		if !d.retry || attempt >= c.opts.MaxAttempts {
			if d.retry {
				apiErr.Attempts = attempt
			}
			return apiErr
		}
		wait := backoff(attempt, retryAfter(header))
		c.opts.Warn(fmt.Sprintf("retrying GET %s in %s (attempt %d of %d): %s", path, wait.Round(time.Millisecond), attempt+1, c.opts.MaxAttempts, d.reason))
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
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("no complete response within %s: %w", c.opts.RequestTimeout, errTimeout)
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

// recordingTransport remembers the status and headers of the last response
// of a request, because stripe-go drops them when an error body is not JSON
// (an HTML 502 from a proxy, say), and the retry decision needs them.
type recordingTransport struct{ next http.RoundTripper }

type responseRecord struct {
	status int
	header http.Header
}

type recordKey struct{}

func withRecord(ctx context.Context, r *responseRecord) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if rec, ok := req.Context().Value(recordKey{}).(*responseRecord); ok && resp != nil {
		rec.status, rec.header = resp.StatusCode, resp.Header
	}
	return resp, err
}
