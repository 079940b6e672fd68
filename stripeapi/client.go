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
	"sync"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"

	"source-stripe/internal/jsonscan"
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
	opts       Options
	backend    *stripe.BackendImplementation
	httpClient *http.Client
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
	httpClient := &http.Client{Transport: newTransport()}
	if opts.HTTPClient != nil {
		*httpClient = *opts.HTTPClient
	}

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
	return &Client{opts: opts, backend: backend, httpClient: httpClient, pacer: newPacer(opts.RequestsPerSecond, opts.Sleep), keyErr: checkKey(opts.APIKey)}
}

// maxIdleConns is how many connections to Stripe are kept open between
// requests: more than the requests a read has in flight at once. (Go's
// default keeps 2 per host, so with dozens of pages in flight most requests
// would open a new TCP and TLS connection.)
const maxIdleConns = 100

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdleConns
	t.MaxIdleConnsPerHost = maxIdleConns
	return t
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

// ListPage fetches one page of the list at path (e.g. "/v1/charges") with
// the given query parameters. A page that breaks the promises of Stripe's
// lists is a *ResponseError: see checkPage.
func (c *Client) ListPage(ctx context.Context, path string, query url.Values) (Page, error) {
	var page Page
	after := query.Get("starting_after")
	err := c.call(ctx, path, query, func(body []byte, requestID string) error {
		var problem string
		page, problem = checkPage(body, after)
		switch {
		case problem == errCutOff:
			return errors.New(problem) // retried: the connection broke mid-body
		case problem != "":
			return &ResponseError{Path: path, Problem: c.redact(problem), RequestID: requestID}
		}
		return nil
	})
	return page, err
}

// errCutOff is checkPage's word for a body that ends mid-JSON.
const errCutOff = "the body is cut off: it is not a complete JSON object"

// checkPage splits a list's body into its objects without decoding them,
// and checks what pagination relies on, so that a malformed answer fails
// the request instead of looping, crashing or emitting non-records: the
// answer is a list; every item is an object with an id, none twice; a page
// that says more follow is not empty; and the page after an object does not
// hold that object again (a server that repeats a page). One pass over the
// body does it all.
func checkPage(body []byte, after string) (Page, string) {
	var page Page
	var object []byte
	seen := map[string]bool{}
	// The top level by hand, so that "data" is scanned once: by the
	// compaction that splits it.
	i := jsonscan.SkipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return Page{}, errCutOff
	}
	for i = jsonscan.SkipSpace(body, i+1); i < len(body) && body[i] != '}'; {
		end := jsonscan.SkipString(body, i)
		if end < 0 {
			return Page{}, errCutOff
		}
		key := string(body[i+1 : end-1])
		if i = jsonscan.SkipSpace(body, end); i >= len(body) || body[i] != ':' {
			return Page{}, errCutOff
		}
		i = jsonscan.SkipSpace(body, i+1)
		switch {
		case key == "data" && i < len(body) && body[i] == '[':
			// The objects, compacted onto one line each, are what the
			// writer puts out as they are.
			compact, elems, n, err := jsonscan.CompactElementsLen(make([]byte, 0, len(body)-i), body[i:])
			if err != nil {
				return Page{}, errCutOff
			}
			page.Data = make([]json.RawMessage, 0, len(elems))
			for k, e := range elems {
				item := compact[e.Start:e.End:e.End]
				switch {
				case e.ID == "" || item[0] != '{':
					return Page{}, fmt.Sprintf("item %d of the page is not an object with an \"id\": %.40s", k, item)
				case seen[e.ID]:
					return Page{}, fmt.Sprintf("the page lists %s twice", e.ID)
				}
				seen[e.ID] = true
				page.Data = append(page.Data, item)
			}
			i += n
		default:
			end := jsonscan.SkipValue(body, i)
			if end < 0 {
				return Page{}, errCutOff
			}
			switch key {
			case "object":
				object = body[i:end]
			case "has_more":
				page.HasMore = string(body[i:end]) == "true"
			}
			i = end
		}
		if i = jsonscan.SkipSpace(body, i); i < len(body) && body[i] == ',' {
			i = jsonscan.SkipSpace(body, i+1)
		}
	}
	switch {
	case i >= len(body):
		return Page{}, errCutOff
	case string(object) != `"list"` || page.Data == nil:
		return Page{}, "the response is not a list (no \"object\":\"list\" with a \"data\" array)"
	case page.HasMore && len(page.Data) == 0:
		return Page{}, "the page is empty but has_more is true: the list cannot progress"
	case after != "" && seen[after]:
		return Page{}, fmt.Sprintf("the page after %s lists %s again: the list cannot progress", after, after)
	}
	return page, ""
}

// Get fetches one object, e.g. "/v1/account".
func (c *Client) Get(ctx context.Context, path string) (json.RawMessage, error) {
	var obj json.RawMessage
	err := c.call(ctx, path, nil, func(body []byte, _ string) error {
		if !jsonscan.Members(body, func(_, _ []byte) bool { return true }) {
			return errors.New(errCutOff) // retried: the connection broke mid-body
		}
		obj = jsonscan.AppendCompact(nil, body)
		return nil
	})
	return obj, err
}

// call performs a GET with retries. Every attempt waits for the pacer, gets
// its own timeout, and every failure is classified by retryDecision.
// accept reads a 2xx body: it returns a *ResponseError for an answer that
// will not get better, any other error for one worth another attempt.
func (c *Client) call(ctx context.Context, path string, query url.Values, accept func(body []byte, requestID string) error) error {
	if c.keyErr != nil {
		return c.keyErr
	}
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys) // stable URLs in logs and tests
	for attempt := 1; ; attempt++ {
		if err := c.pacer.wait(ctx); err != nil {
			return err
		}
		body, status, header, err := c.attempt(ctx, path, query, keys)
		if err == nil {
			err = accept(body, header.Get("Request-Id"))
		}
		releaseBody(body) // accept kept compacted copies, not the body
		if status == http.StatusTooManyRequests {
			c.pacer.rateLimited(retryAfter(header))
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

// bodyPool recycles the buffers bodies are read into: a page is a few
// hundred kilobytes, and each is read into a buffer of its size once.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func releaseBody(body []byte) {
	if cap(body) == 0 || cap(body) > maxPooledBody {
		return
	}
	bodyPool.Put(bytes.NewBuffer(body[:0]))
}

// maxPooledBody: larger bodies are left to the garbage collector.
const maxPooledBody = 2 << 20

// maxBody bounds a response body: a page of 100 of Stripe's largest
// objects is a few megabytes.
const maxBody = 64 << 20

// attempt makes one request. stripe-go's backend builds it (base URL, key,
// pinned version, Stripe-Account) and decodes Stripe's errors; the body is
// read here, once, and not decoded: its objects pass through as they are.
// (stripe-go's own streaming call dereferences a nil response on a network
// error, so the client sends the request itself.)
func (c *Client) attempt(ctx context.Context, path string, query url.Values, keys []string) ([]byte, int, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	values := &form.Values{}
	for _, k := range keys {
		for _, v := range query[k] {
			values.Add(k, v)
		}
	}
	if !values.Empty() {
		path += "?" + values.Encode()
	}
	params := &stripe.Params{Context: ctx}
	if c.opts.Account != "" {
		params.StripeAccount = stripe.String(c.opts.Account)
	}
	req, err := c.backend.NewRequest(http.MethodGet, path, c.opts.APIKey, "application/x-www-form-urlencoded", params)
	if err != nil {
		return nil, 0, nil, err
	}
	res, err := c.httpClient.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no complete response within %s: %w", c.opts.RequestTimeout, errTimeout)
		}
		return nil, 0, nil, err
	}
	defer res.Body.Close()
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	if res.ContentLength > 0 && res.ContentLength <= maxBody {
		buf.Grow(int(res.ContentLength) + bytes.MinRead)
	}
	_, err = buf.ReadFrom(io.LimitReader(res.Body, maxBody+1))
	body := buf.Bytes()
	status, header := res.StatusCode, res.Header
	requestID := header.Get("Request-Id")
	switch {
	case err != nil && ctx.Err() == context.DeadlineExceeded:
		err = fmt.Errorf("no complete response within %s: %w", c.opts.RequestTimeout, errTimeout)
	case err != nil:
		// The connection broke mid-body: retried like a reset.
	case len(body) > maxBody:
		err = &ResponseError{Path: path, RequestID: requestID, Problem: fmt.Sprintf("the answer is larger than %d MiB", maxBody>>20)}
	case status >= 400:
		err = c.backend.ResponseToError(res, body)
	case status < 200 || status >= 300:
		// A 3xx that was not followed (no Location) is no answer of Stripe's.
		err = &ResponseError{Path: path, RequestID: requestID, Problem: fmt.Sprintf("HTTP %d is not an answer of Stripe's API", status)}
	case notJSON(body):
		err = &ResponseError{Path: path, RequestID: requestID, Problem: c.redact(fmt.Sprintf(
			"the answer is not JSON (Content-Type %q, starting %q); if STRIPE_API_BASE is set, check that it points at Stripe's API",
			header.Get("Content-Type"), prefix(body)))}
	}
	return body, status, header, err
}

// notJSON reports whether a body cannot be the start of a JSON document (an
// empty or cut-off body can).
func notJSON(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] != '{' && b[0] != '['
}

// prefix is the start of a body, to quote in an error.
func prefix(body []byte) string {
	const n = 40
	if len(body) > n {
		return string(body[:n])
	}
	return string(body)
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

type rateLimitKey struct{}

// WithRateLimitNotice returns a context whose requests call notice when
// Stripe answers 429, with when the pacer expects to send again: a stream
// reports that it is rate limited.
func WithRateLimitNotice(ctx context.Context, notice func(resetAt time.Time)) context.Context {
	return context.WithValue(ctx, rateLimitKey{}, notice)
}
