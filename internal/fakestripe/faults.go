package fakestripe

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// FaultKind is one way WithFaults fails a request on purpose: the ways a real API, its proxies and
// the network between fail, which a client has to ride out.
type FaultKind string

const (
	// FaultServerError answers 500, 502 with an HTML body (as a proxy in front of Stripe does), 503
	// or 504.
	FaultServerError FaultKind = "server_error"
	// FaultConflict answers 409 lock_timeout.
	FaultConflict FaultKind = "conflict"
	// FaultRateLimit answers 429 rate_limit.
	FaultRateLimit FaultKind = "rate_limit"
	// FaultShouldRetry answers 400 with Stripe-Should-Retry: true, which overrides the status.
	FaultShouldRetry FaultKind = "should_retry"
	// FaultReset drops the connection before any answer: a TCP reset, or (every other time) a
	// plain close, which the client reads as EOF.
	FaultReset FaultKind = "reset"
	// FaultTruncated sends the real answer cut off in the middle of its body: either the
	// connection closes before Content-Length is reached, or (every other time) the body is
	// complete by its framing but stops mid-JSON.
	FaultTruncated FaultKind = "truncated"
	// FaultSlow sends the real answer after FaultPlan.Slow.
	FaultSlow FaultKind = "slow"
	// FaultStall sends the headers and half of the real body, waits FaultPlan.Slow, then sends
	// the rest: a response slow in its body, not only in its headers.
	FaultStall FaultKind = "stall"
	// FaultRateLimitBurst is a 429 answered during one of FaultPlan's bursts. It is counted by
	// InjectedFaults, not chosen through Kinds.
	FaultRateLimitBurst FaultKind = "rate_limit_burst"
)

// AllFaultKinds are the kinds a FaultPlan without Kinds injects.
func AllFaultKinds() []FaultKind {
	return []FaultKind{FaultServerError, FaultConflict, FaultRateLimit, FaultShouldRetry, FaultReset, FaultTruncated, FaultSlow, FaultStall}
}

// FaultPlan makes a share of requests fail at random, reproducibly.
//
// Whether a request fails depends only on Seed, the request (method, path and query) and how many
// times the fake has seen that same request before, never on the order in which concurrent
// requests arrive: a retry of a failed request is a new draw. The kinds of the faults injected
// rotate through Kinds, so that a run with n faults sees min(n, len(Kinds)) different kinds.
type FaultPlan struct {
	// Rate is the share of requests that fail, from 0 to 1.
	Rate float64
	// Seed selects which requests fail.
	Seed uint64
	// Kinds are the faults to inject (default: AllFaultKinds).
	Kinds []FaultKind
	// Slow is how long FaultSlow and FaultStall hold an answer back (default 200 ms).
	Slow time.Duration
	// BurstEvery and BurstLength add bursts of rate limiting: in every BurstEvery since the
	// fake started, every request of the last BurstLength is answered 429, whatever Rate says.
	BurstEvery, BurstLength time.Duration
}

// WithFaults fails requests at random as plan says, before anything else the fake does (after
// WithLatency's delay): a hook, rate limit, FailNext, authentication and the endpoint see only
// the requests it lets through, and the answers it slows down or truncates are theirs.
func WithFaults(plan FaultPlan) Option {
	return func(c *config) {
		p := plan
		c.faults = &p
	}
}

// InjectedFaults returns how many faults of each kind WithFaults injected so far.
func (s *Server) InjectedFaults() map[FaultKind]int {
	out := map[FaultKind]int{}
	if s.chaos == nil {
		return out
	}
	s.chaos.mu.Lock()
	defer s.chaos.mu.Unlock()
	for k, n := range s.chaos.injected {
		out[k] = n
	}
	return out
}

// injector carries out a FaultPlan.
type injector struct {
	plan    FaultPlan
	started time.Time

	mu       sync.Mutex
	seen     map[string]uint64 // request -> times seen
	next     int               // index in plan.Kinds of the next fault's kind
	injected map[FaultKind]int
}

// defaultSlow: long enough to notice, short enough for tests.
const defaultSlow = 200 * time.Millisecond

func newInjector(plan FaultPlan) *injector {
	if len(plan.Kinds) == 0 {
		plan.Kinds = AllFaultKinds()
	}
	if plan.Slow <= 0 {
		plan.Slow = defaultSlow
	}
	return &injector{plan: plan, started: time.Now(), seen: map[string]uint64{}, injected: map[FaultKind]int{}}
}

// draw decides whether this request fails, and how: the fault kind ("" for none) and a random
// number that picks among a kind's variants.
func (in *injector) draw(r *http.Request) (FaultKind, uint64) {
	p := in.plan
	if p.BurstEvery > 0 && p.BurstLength > 0 {
		if phase := time.Since(in.started) % p.BurstEvery; phase >= p.BurstEvery-p.BurstLength {
			in.count(FaultRateLimitBurst)
			return FaultRateLimitBurst, 0
		}
	}
	if p.Rate <= 0 {
		return "", 0
	}
	key := r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
	h := fnv.New64a()
	h.Write([]byte(key))
	in.mu.Lock()
	n := in.seen[key]
	in.seen[key] = n + 1
	in.mu.Unlock()
	rng := rand.New(rand.NewPCG(p.Seed, h.Sum64()^(n*0x9e3779b97f4a7c15)))
	if rng.Float64() >= p.Rate {
		return "", 0
	}
	in.mu.Lock()
	kind := p.Kinds[in.next%len(p.Kinds)]
	in.next++
	in.injected[kind]++
	in.mu.Unlock()
	return kind, rng.Uint64()
}

func (in *injector) count(kind FaultKind) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.injected[kind]++
}

// serve injects the fault this request draws, if any, and returns its kind ("" when the request
// is to be answered normally). w is the connection's own ResponseWriter (for hijacking), sw its
// status-recording wrapper, answer the fake's normal answer.
func (in *injector) serve(w http.ResponseWriter, sw *statusWriter, r *http.Request, answer func(http.ResponseWriter)) FaultKind {
	kind, variant := in.draw(r)
	switch kind {
	case "":
		return ""
	case FaultRateLimitBurst, FaultRateLimit:
		writeError(sw, http.StatusTooManyRequests, errorFor(http.StatusTooManyRequests))
	case FaultConflict:
		writeError(sw, http.StatusConflict, errorFor(http.StatusConflict))
	case FaultShouldRetry:
		sw.Header().Set("Stripe-Should-Retry", "true")
		writeError(sw, http.StatusBadRequest, apiError{Type: "api_error", Message: "A transient problem occurred; retry the request."})
	case FaultServerError:
		statuses := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
		status := statuses[variant%uint64(len(statuses))]
		if status == http.StatusBadGateway {
			sw.Header().Set("Content-Type", "text/html")
			sw.WriteHeader(status)
			_, _ = sw.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n"))
		} else {
			writeError(sw, status, errorFor(status))
		}
	case FaultReset:
		sw.status = 0 // no answer
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(fmt.Sprintf("fakestripe: hijacking a connection: %v", err))
		}
		if tcp, ok := conn.(*net.TCPConn); ok && variant%2 == 0 {
			_ = tcp.SetLinger(0) // close with RST
		}
		_ = conn.Close()
	case FaultSlow:
		t := time.NewTimer(in.plan.Slow)
		defer t.Stop()
		select {
		case <-t.C:
			answer(sw)
		case <-r.Context().Done():
			sw.status = 499
		}
	case FaultTruncated, FaultStall:
		rec := captured(sw.Header())
		answer(rec)
		body := rec.body.Bytes()
		cut := len(body) / 2
		if kind == FaultStall {
			in.stall(sw, r, rec, cut)
		} else {
			truncate(w, sw, rec, cut, variant%2 == 0)
		}
	}
	return kind
}

// stall writes rec's answer with a pause of plan.Slow after its first cut bytes.
func (in *injector) stall(sw *statusWriter, r *http.Request, rec *capture, cut int) {
	body := rec.body.Bytes()
	copyHeader(sw.Header(), rec.header)
	sw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	sw.WriteHeader(rec.status)
	_, _ = sw.Write(body[:cut])
	_ = http.NewResponseController(sw.ResponseWriter).Flush()
	t := time.NewTimer(in.plan.Slow)
	defer t.Stop()
	select {
	case <-t.C:
		_, _ = sw.Write(body[cut:])
	case <-r.Context().Done():
	}
}

// truncate sends only the first cut bytes of rec's body. When closeEarly is true the headers
// announce the whole body and the connection closes after cut bytes; otherwise the headers
// announce cut bytes, so that the answer is complete for HTTP but not valid JSON.
func truncate(w http.ResponseWriter, sw *statusWriter, rec *capture, cut int, closeEarly bool) {
	body := rec.body.Bytes()
	sw.status = rec.status
	if !closeEarly {
		copyHeader(sw.Header(), rec.header)
		sw.Header().Set("Content-Length", strconv.Itoa(cut))
		sw.WriteHeader(rec.status)
		_, _ = sw.Write(body[:cut])
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("fakestripe: hijacking a connection: %v", err))
	}
	defer conn.Close()
	header := rec.header.Clone()
	header.Set("Content-Length", strconv.Itoa(len(body)))
	header.Set("Connection", "close")
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", rec.status, http.StatusText(rec.status))
	_ = header.Write(buf)
	_, _ = buf.WriteString("\r\n")
	_, _ = buf.Write(body[:cut])
	_ = buf.Flush()
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// capture is a ResponseWriter that keeps the answer in memory.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func captured(header http.Header) *capture { return &capture{header: header.Clone()} }

func (c *capture) Header() http.Header { return c.header }

func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(p)
}
