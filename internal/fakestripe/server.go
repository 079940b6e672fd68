// Package fakestripe is a stateful fake of the Stripe API's read endpoints, for end-to-end tests of
// the connector and for trying it by hand without a Stripe account.
//
// Objects are built from the example objects of Stripe's OpenAPI fixtures (stripe-mock's
// fixtures3.json) with their id, creation time and relations overridden, so records keep validating
// against schemas generated from Stripe's OpenAPI description. Lists follow Stripe's semantics
// (newest first, cursors, created filters, hidden canceled subscriptions, deleted customers), tests
// mutate the data between reads and every mutation records an event like Stripe does.
package fakestripe

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// APIVersion is the only Stripe-Version the fake serves.
const APIVersion = "2023-10-16"

// DefaultKey is the secret key the fake accepts unless WithKeys says otherwise.
const DefaultKey = "sk_test_fake"

// DefaultAccountID is the account id /v1/account answers unless WithAccountID says otherwise.
const DefaultAccountID = "acct_fake"

// KeyInfo describes an API key the fake accepts.
type KeyInfo struct {
	// Kinds lists the kinds a restricted key (rk_live_/rk_test_) may read; other endpoints answer 403.
	// Secret keys (sk_) read everything and ignore it.
	Kinds []string
}

// Hook sees every request before the fake does. When handled is true the fake answers with status,
// body and header (a nil body on an error status gets a generic Stripe error body).
type Hook func(r *http.Request) (handled bool, status int, body []byte, header http.Header)

// RequestRecord is one request the fake answered.
type RequestRecord struct {
	Time     time.Time
	Method   string
	Path     string
	RawQuery string
	Query    url.Values
	Status   int
	// Key is the API key masked like Stripe masks it in errors; empty when none was sent.
	Key string
	// Authenticated is true when the key was one the fake accepts.
	Authenticated bool
	// StripeVersion and StripeAccount are the request's Stripe-Version and Stripe-Account headers.
	StripeVersion string
	StripeAccount string
	RequestID     string
	// Fault is the fault WithFaults injected into this request's answer, if any.
	Fault FaultKind
}

// Option configures a Server.
type Option func(*config)

type config struct {
	clock       func() time.Time
	accountID   string
	keys        map[string]KeyInfo
	hook        Hook
	rateLimit   int
	latency     time.Duration
	jitter      time.Duration
	seed        int64
	maxRequests int
	observe     func(RequestRecord)
	connected   map[string]bool
	faults      *FaultPlan
}

// WithClock sets the clock Now reads and mutations use when given a zero time.
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithConnectedAccounts names connected accounts of the platform that the
// keys may read through the Stripe-Account header; any other account in that
// header is answered 403, as Stripe does.
func WithConnectedAccounts(ids ...string) Option {
	return func(c *config) {
		c.connected = map[string]bool{}
		for _, id := range ids {
			c.connected[id] = true
		}
	}
}

// WithAccountID sets the id of the account the keys belong to.
func WithAccountID(id string) Option { return func(c *config) { c.accountID = id } }

// WithKeys replaces the accepted API keys (by default only DefaultKey).
func WithKeys(keys map[string]KeyInfo) Option {
	return func(c *config) {
		c.keys = make(map[string]KeyInfo, len(keys))
		for k, v := range keys {
			c.keys[k] = v
		}
	}
}

// WithHook lets a test answer requests itself.
func WithHook(h Hook) Option { return func(c *config) { c.hook = h } }

// WithRateLimit answers 429 rate_limit past perSecond requests a second (a token bucket holding one
// second of requests), like Stripe's per-account read limit.
func WithRateLimit(perSecond int) Option { return func(c *config) { c.rateLimit = perSecond } }

// WithLatency delays every answer by base plus a random duration below jitter.
func WithLatency(base, jitter time.Duration) Option {
	return func(c *config) { c.latency, c.jitter = base, jitter }
}

// WithSeed seeds the id generator used before the first Seed call.
func WithSeed(seed int64) Option { return func(c *config) { c.seed = seed } }

// WithMaxRequests keeps only the last n request records (0, the default, keeps all), for long runs.
func WithMaxRequests(n int) Option { return func(c *config) { c.maxRequests = n } }

// WithObserver calls observe with every request's record once it is answered, for logging.
func WithObserver(observe func(RequestRecord)) Option { return func(c *config) { c.observe = observe } }

// Server is a fake Stripe API. Its methods are safe for concurrent use.
type Server struct {
	cfg config

	mu    sync.RWMutex
	colls map[string]*collection
	byID  map[string]*object
	rng   *rand.Rand

	mux      *http.ServeMux
	listener net.Listener
	http     *http.Server
	url      string

	reqSeq   atomic.Uint64
	reqMu    sync.Mutex
	requests []RequestRecord
	reqCount int

	faultMu sync.Mutex
	faults  []*fault
	bucket  *tokenBucket
	chaos   *injector // WithFaults

	eventAPIVersion string // api_version of new events; APIVersion when empty
}

type fault struct {
	prefix string
	left   int
	status int
}

// New starts a fake on a free loopback port, like httptest.NewServer; it panics when it cannot listen.
func New(opts ...Option) *Server {
	s, err := Listen("127.0.0.1:0", opts...)
	if err != nil {
		panic(fmt.Sprintf("fakestripe: %v", err))
	}
	return s
}

// Listen starts a fake on addr, which must be a loopback address: the fake holds no secrets but
// should not be reachable from other machines.
func Listen(addr string, opts ...Option) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("parsing listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("listen address %q is not a loopback address", addr)
	}
	s := NewUnstarted(opts...)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	s.listener = ln
	s.url = "http://" + ln.Addr().String()
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// NewUnstarted returns a fake that listens nowhere; serve it with Handler.
func NewUnstarted(opts ...Option) *Server {
	cfg := config{clock: time.Now, accountID: DefaultAccountID, keys: map[string]KeyInfo{DefaultKey: {}}, seed: 1}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		cfg:   cfg,
		colls: make(map[string]*collection, len(kindTable)),
		byID:  make(map[string]*object),
		rng:   newRand(cfg.seed),
	}
	tmpls := templates()
	for _, k := range kindTable {
		s.colls[k.name] = &collection{spec: k, tmpl: tmpls[k.name], byParent: map[string][]*object{}}
	}
	if cfg.rateLimit > 0 {
		s.bucket = &tokenBucket{rate: float64(cfg.rateLimit), tokens: float64(cfg.rateLimit), last: time.Now()}
	}
	if cfg.faults != nil {
		s.chaos = newInjector(*cfg.faults)
	}
	s.mux = s.routes()
	return s
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x5eed_f00d_5717_e000))
}

// URL is the fake's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.url }

// Handler serves the fake's API, for mounting it elsewhere.
func (s *Server) Handler() http.Handler { return s }

// Close stops the server and drops open connections.
func (s *Server) Close() {
	if s.http != nil {
		_ = s.http.Close()
	}
}

// Shutdown stops the server after in-flight requests finish.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown(ctx)
}

// Now is the fake's clock.
func (s *Server) Now() time.Time { return s.cfg.clock() }

// FailNext answers the next n requests whose path starts with pathPrefix with status and a Stripe
// error body, before authentication. Calls queue up: the oldest unexhausted match applies.
func (s *Server) FailNext(pathPrefix string, n int, status int) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = append(s.faults, &fault{prefix: pathPrefix, left: n, status: status})
}

func (s *Server) takeFault(path string) (int, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for i, f := range s.faults {
		if strings.HasPrefix(path, f.prefix) {
			f.left--
			if f.left <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return f.status, true
		}
	}
	return 0, false
}

// Requests returns the requests answered since the last ResetRequests, oldest first.
func (s *Server) Requests() []RequestRecord {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return append([]RequestRecord(nil), s.requests...)
}

// RequestCount is the number of requests answered since the last ResetRequests.
func (s *Server) RequestCount() int {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return s.reqCount
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.requests, s.reqCount = nil, 0
}

func (s *Server) record(rec RequestRecord) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.reqCount++
	s.requests = append(s.requests, rec)
	if m := s.cfg.maxRequests; m > 0 && len(s.requests) > m {
		s.requests = append(s.requests[:0], s.requests[len(s.requests)-m:]...)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

type ctxKey struct{}

// ServeHTTP answers one request: latency, random faults (WithFaults), hook, rate limit, injected
// faults (FailNext), authentication, API version, then the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := fmt.Sprintf("req_fake%010d", s.reqSeq.Add(1))
	h := w.Header()
	h.Set("Request-Id", reqID)
	h.Set("Content-Type", "application/json")
	h.Set("Stripe-Version", APIVersion)
	sw := &statusWriter{ResponseWriter: w}
	key := bearerKey(r)
	_, known := s.cfg.keys[key]
	rec := RequestRecord{
		Time: time.Now(), Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Query: r.URL.Query(),
		Key: maskKey(key), Authenticated: known && key != "",
		StripeVersion: r.Header.Get("Stripe-Version"), StripeAccount: r.Header.Get("Stripe-Account"), RequestID: reqID,
	}
	defer func() {
		rec.Status = sw.status
		s.record(rec)
		if s.cfg.observe != nil {
			s.cfg.observe(rec)
		}
	}()

	if !s.wait(r.Context()) {
		sw.WriteHeader(499) // the client went away; nobody reads this
		return
	}
	if s.chaos != nil {
		answer := func(w http.ResponseWriter) { s.answer(w, r, key, rec.StripeAccount, rec.StripeVersion) }
		if rec.Fault = s.chaos.serve(w, sw, r, answer); rec.Fault != "" {
			return
		}
	}
	s.answer(sw, r, key, rec.StripeAccount, rec.StripeVersion)
}

// answer answers a request that no random fault took: hook, rate limit, FailNext, authentication,
// API version, then the endpoint.
func (s *Server) answer(sw http.ResponseWriter, r *http.Request, key, account, version string) {
	h := sw.Header()
	if hook := s.cfg.hook; hook != nil {
		if handled, status, body, header := hook(r); handled {
			for k, v := range header {
				h[k] = v
			}
			if status == 0 {
				status = http.StatusOK
			}
			if body == nil && status >= 400 {
				writeError(sw, status, errorFor(status))
				return
			}
			sw.WriteHeader(status)
			_, _ = sw.Write(body)
			return
		}
	}
	if s.bucket != nil && !s.bucket.take(time.Now()) {
		writeError(sw, http.StatusTooManyRequests, errorFor(http.StatusTooManyRequests))
		return
	}
	if status, ok := s.takeFault(r.URL.Path); ok {
		writeError(sw, status, errorFor(status))
		return
	}
	info, ok := s.authenticate(sw, r, key)
	if !ok {
		return
	}
	if account != "" && account != s.cfg.accountID && !s.cfg.connected[account] {
		writeError(sw, http.StatusForbidden, apiError{Type: "invalid_request_error",
			Message: fmt.Sprintf("The provided key '%s' does not have access to account '%s' (or that account does not exist). "+
				"Application access may have been revoked.", maskKey(key), account)})
		return
	}
	if version != "" && version != APIVersion {
		writeError(sw, http.StatusBadRequest, apiError{Type: "invalid_request_error",
			Message: fmt.Sprintf("fakestripe serves only Stripe-Version %s; the request asked for %q.", APIVersion, version)})
		return
	}
	s.mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
}

// wait sleeps the configured latency; false when the request was canceled meanwhile.
func (s *Server) wait(ctx context.Context) bool {
	d := s.cfg.latency
	if s.cfg.jitter > 0 {
		d += rand.N(s.cfg.jitter)
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type keyContext struct {
	key        string
	restricted bool
	info       KeyInfo
}

func bearerKey(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if k, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return strings.TrimSpace(k)
	}
	if user, _, ok := r.BasicAuth(); ok {
		return user
	}
	return ""
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, key string) (keyContext, bool) {
	if key == "" {
		writeError(w, http.StatusUnauthorized, apiError{Type: "invalid_request_error",
			Message: "You did not provide an API key. You need to provide your API key in the Authorization header, " +
				"using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."})
		return keyContext{}, false
	}
	if strings.HasPrefix(key, "pk_") {
		writeError(w, http.StatusUnauthorized, apiError{Type: "invalid_request_error",
			Message: "This API call cannot be made with a publishable API key. Please use a secret API key."})
		return keyContext{}, false
	}
	info, ok := s.cfg.keys[key]
	if !ok {
		writeError(w, http.StatusUnauthorized, apiError{Type: "invalid_request_error",
			Message: "Invalid API Key provided: " + maskKey(key)})
		return keyContext{}, false
	}
	return keyContext{key: key, restricted: strings.HasPrefix(key, "rk_"), info: info}, true
}

// permit answers 403 when the request's restricted key may not read kind.
func (s *Server) permit(w http.ResponseWriter, r *http.Request, k *kindSpec) bool {
	kc, _ := r.Context().Value(ctxKey{}).(keyContext)
	if !kc.restricted {
		return true
	}
	for _, allowed := range kc.info.Kinds {
		if allowed == k.name {
			return true
		}
	}
	writeError(w, http.StatusForbidden, apiError{Type: "invalid_request_error",
		Message: fmt.Sprintf("The provided key '%s' does not have the required permissions for this endpoint on account '%s'. "+
			"Having the 'rak_%s_read' permission would allow this request to continue.",
			maskKey(kc.key), s.cfg.accountID, k.permission)})
	return false
}

// maskKey hides a key like Stripe does in errors: its type prefix and last four characters.
func maskKey(key string) string {
	if key == "" {
		return ""
	}
	prefix := ""
	for _, p := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_"} {
		if strings.HasPrefix(key, p) {
			prefix = p
		}
	}
	rest := key[len(prefix):]
	if len(rest) <= 8 {
		return prefix + strings.Repeat("*", len(rest))
	}
	return prefix + strings.Repeat("*", len(rest)-4) + rest[len(rest)-4:]
}

type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// apiError is the body of Stripe's error responses.
type apiError struct {
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	body, _ := json.Marshal(struct {
		Error apiError `json:"error"`
	}{e})
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorFor is the generic error Stripe answers with a status.
func errorFor(status int) apiError {
	switch status {
	case http.StatusTooManyRequests:
		return apiError{Type: "invalid_request_error", Code: "rate_limit",
			Message: "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."}
	case http.StatusUnauthorized:
		return apiError{Type: "invalid_request_error", Message: "Invalid API Key provided: sk_test_****"}
	case http.StatusForbidden:
		return apiError{Type: "invalid_request_error", Message: "The provided key does not have the required permissions for this endpoint."}
	case http.StatusNotFound:
		return apiError{Type: "invalid_request_error", Code: "resource_missing", Message: "No such object."}
	case http.StatusConflict:
		return apiError{Type: "invalid_request_error", Code: "lock_timeout",
			Message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it."}
	case http.StatusBadRequest:
		return apiError{Type: "invalid_request_error", Message: "Invalid request."}
	}
	if status >= 500 {
		return apiError{Type: "api_error", Message: "An unknown error occurred (status " + strconv.Itoa(status) + ")."}
	}
	return apiError{Type: "invalid_request_error", Message: http.StatusText(status)}
}
