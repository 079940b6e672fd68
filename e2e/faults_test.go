package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"source-stripe/catalog"
	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/streams"
	"source-stripe/stripeapi"
)

// knobs make the tests that wait for retries to run out, or for the
// per-request timeout, run in seconds: by default a request is tried 8 times
// over about a minute, each attempt for up to 80 s.
var knobs = []string{"SOURCE_STRIPE_MAX_ATTEMPTS=2", "SOURCE_STRIPE_REQUEST_TIMEOUT=300ms"}

// TestReadRidesOutFaults reads every stream while the fake fails 5 % of
// requests at random (5xx, HTML 502s, 409s, 429s, Stripe-Should-Retry,
// connection resets, bodies cut off mid-JSON, slow answers and answers that
// stall mid-body) and answers 429 to everything in bursts: the records are
// exactly the fake's objects, each once.
func TestReadRidesOutFaults(t *testing.T) {
	fake := fakestripe.New(fakestripe.WithFaults(fakestripe.FaultPlan{
		Rate: 0.05, Seed: 5, Slow: 300 * time.Millisecond,
		BurstEvery: 2 * time.Second, BurstLength: 100 * time.Millisecond,
	}))
	t.Cleanup(fake.Close)
	// Twice the default dataset: about 300 requests, 15 of them failed.
	fake.Seed(fakestripe.DefaultDataset().Scale(2))
	e := &env{t: t, fake: fake, vars: []string{"STRIPE_API_BASE=" + fake.URL()}}
	var names []string
	for s := range kindOf {
		names = append(names, s)
	}
	slices.Sort(names)
	res := e.run("read", "--config", e.config(nil), "--catalog", catalogFile(t, protocol.SyncModeFullRefresh, names...))
	requireExit(t, res, 0)
	for _, stream := range names {
		got := testbin.IDs(res.Records(stream))
		slices.Sort(got)
		if want := wantIDs(e.fake, stream); !slices.Equal(got, want) {
			t.Errorf("%s: read %d records (%d distinct), the fake holds %d", stream, len(got), len(slices.Compact(slices.Clone(got))), len(want))
		}
		if st := res.Statuses()[stream]; st[len(st)-1] != protocol.StreamComplete {
			t.Errorf("%s: statuses %v", stream, st)
		}
	}
	injected := e.fake.InjectedFaults()
	total := 0
	for _, n := range injected {
		total += n
	}
	retries := 0
	for _, m := range res.Of(protocol.TypeLog) {
		if strings.Contains(m.Log.Message, "retrying GET") {
			retries++
		}
	}
	t.Logf("%d requests; faults injected: %v; %d retries logged", e.fake.RequestCount(), injected, retries)
	if total < 5 || retries == 0 {
		t.Errorf("only %d faults were injected and %d retried: the test proves little", total, retries)
	}
}

// pager serves the charges list from a mirror of the test's fake (same
// dataset, same ids), so that a test can alter real pages: it remembers
// every page by its last id, to answer the page after it.
type pager struct {
	t      *testing.T
	mirror *fakestripe.Server

	mu      sync.Mutex
	byLast  map[string][]json.RawMessage
	altered atomic.Int32 // pages a case changed
}

func createdOf(obj json.RawMessage) int64 {
	var o struct{ Created int64 }
	json.Unmarshal(obj, &o)
	return o.Created
}

func newPager(t *testing.T) *pager {
	mirror := fakestripe.New()
	t.Cleanup(mirror.Close)
	mirror.Seed(fakestripe.DefaultDataset())
	return &pager{t: t, mirror: mirror, byLast: map[string][]json.RawMessage{}}
}

// real returns the page the fake would answer to r.
func (p *pager) real(r *http.Request) ([]json.RawMessage, bool) {
	req, _ := http.NewRequest(http.MethodGet, p.mirror.URL()+r.URL.RequestURI(), nil)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Errorf("mirror: %v", err)
		return nil, false
	}
	defer resp.Body.Close()
	var page struct {
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	json.NewDecoder(resp.Body).Decode(&page)
	if n := len(page.Data); n > 0 {
		p.mu.Lock()
		p.byLast[testbin.IDs([]protocol.Record{{Data: page.Data[n-1]}})[0]] = page.Data
		p.mu.Unlock()
	}
	return page.Data, page.HasMore
}

// before returns the page whose last id is after.
func (p *pager) before(after string) []json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byLast[after]
}

func listOf(items []json.RawMessage, hasMore bool) []byte {
	raw, _ := json.Marshal(map[string]any{"object": "list", "url": "/v1/charges", "data": items, "has_more": hasMore})
	return raw
}

func constant(body string) func(*pager, *http.Request) []byte {
	return func(*pager, *http.Request) []byte { return []byte(body) }
}

// TestMalformedAnswers: a broken answer to one stream's list ends that
// stream INCOMPLETE with one transient_error that says what was wrong,
// fast, without a panic; the other streams are read in full, and the
// process exits 1.
func TestMalformedAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(p *pager, r *http.Request) []byte
		want   string
	}{
		{"HTML instead of JSON", constant("<html><body>Maintenance</body></html>"), `the answer is not JSON (Content-Type "text/html"`},
		{"a list without data", constant(`{"object":"list","has_more":false,"url":"/v1/charges"}`), "the response is not a list"},
		{"has_more with an empty page", constant(`{"object":"list","data":[],"has_more":true,"url":"/v1/charges"}`), "the page is empty but has_more is true"},
		{"an item that is not an object", constant(`{"object":"list","data":["ch_1"],"has_more":false,"url":"/v1/charges"}`), "item 0 of the page is not an object"},
		{"an id twice in a page", constant(`{"object":"list","data":[{"id":"ch_dup","created":1700000000},{"id":"ch_dup","created":1700000000}],"has_more":false}`),
			"the page lists ch_dup twice"},
		{"an object outside the requested window", constant(`{"object":"list","data":[{"id":"ch_future","created":4102444800}],"has_more":true}`),
			"outside"},
		{"has_more with an empty later page", func(p *pager, r *http.Request) []byte {
			if r.URL.Query().Get("starting_after") != "" {
				return listOf([]json.RawMessage{}, true)
			}
			return listOf(p.real(r))
		}, "the page is empty but has_more is true"},
		{"the same page again", func(p *pager, r *http.Request) []byte {
			if after := r.URL.Query().Get("starting_after"); after != "" {
				return listOf(p.before(after), true)
			}
			return listOf(p.real(r))
		}, "again: the list cannot progress"},
		{"an id on two pages", func(p *pager, r *http.Request) []byte {
			// The page after X starts again with an object of the page
			// that ended at X, one created in X's second: in order, by
			// creation time, but seen before.
			data, more := p.real(r)
			if after := r.URL.Query().Get("starting_after"); after != "" {
				prev := p.before(after)
				second := createdOf(prev[len(prev)-1])
				for _, obj := range prev[:len(prev)-1] {
					if createdOf(obj) == second {
						data = append([]json.RawMessage{obj}, data...)
						p.altered.Add(1)
						break
					}
				}
			}
			return listOf(data, more)
		}, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPager(t)
			e := newEnv(t, fakestripe.WithHook(func(r *http.Request) (bool, int, []byte, http.Header) {
				if r.URL.Path != "/v1/charges" {
					return false, 0, nil, nil
				}
				body := tc.answer(p, r)
				header := http.Header{"Content-Type": {"application/json"}}
				if bytes.HasPrefix(body, []byte("<")) {
					header.Set("Content-Type", "text/html")
				}
				return true, 200, body, header
			}))
			began := time.Now()
			res := e.run("read", "--config", e.config(nil), "--catalog", catalogFile(t, protocol.SyncModeFullRefresh, "charges", "coupons"))
			took := time.Since(began)
			if tc.name == "an id on two pages" && p.altered.Load() == 0 {
				t.Fatal("no page boundary fell inside a second: the test proves nothing")
			}
			expect(t, func(p *problems) {
				if strings.Contains(res.Stderr, "panic:") {
					p.Errorf("panicked:\n%s", res.Stderr)
				}
				if took > 10*time.Second {
					p.Errorf("took %s: a malformed answer is not worth retrying", took.Round(time.Millisecond))
				}
				if res.ExitCode != 1 {
					p.Errorf("exit %d, want 1", res.ExitCode)
				}
				st := res.Statuses()
				if s := st["charges"]; len(s) == 0 || s[len(s)-1] != protocol.StreamIncomplete {
					p.Errorf("charges: statuses %v, want INCOMPLETE last", s)
				}
				if s := st["coupons"]; len(s) == 0 || s[len(s)-1] != protocol.StreamComplete || len(res.Records("coupons")) != len(e.fake.IDs(fakestripe.KindCoupon)) {
					p.Errorf("coupons: statuses %v, %d records: the other stream must be read in full", s, len(res.Records("coupons")))
				}
				errs := res.Errors()
				if len(errs) != 1 || errs[0].FailureType != protocol.FailureTransient || errs[0].StreamDescriptor == nil || errs[0].StreamDescriptor.Name != "charges" ||
					!strings.Contains(errs[0].Message, "Stripe sent a malformed response for stream charges") || !strings.Contains(errs[0].Message, tc.want) {
					p.Errorf("errors %+v; want one transient_error for charges saying %q", errs, tc.want)
				}
			})
		})
	}
}

// TestRetriesRunOut: a stream whose requests keep failing ends INCOMPLETE
// with one transient_error naming it, the last status and request id; the
// other streams are read in full, and the read fails. In process, with the
// client's waits skipped.
func TestRetriesRunOut(t *testing.T) {
	e := newEnv(t)
	e.fake.FailNext("/v1/charges", 1000, http.StatusServiceUnavailable)
	var out bytes.Buffer
	w := protocol.NewWriter(&out)
	client := stripeapi.New(stripeapi.Options{APIKey: fakestripe.DefaultKey, BaseURL: e.fake.URL(), MaxAttempts: 3,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Warn:  func(msg string) { w.Log(protocol.LevelWarn, msg) }})
	cc, err := catalog.Default([]string{"charges", "coupons", "plans"})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := catalog.Plan(cc, state.Set{})
	if err != nil {
		t.Fatal(err)
	}
	reader := &streams.Reader{Client: client, Out: w, StartDate: fakestripe.DefaultEnd.Add(-60 * 24 * time.Hour)}
	err = reader.Read(context.Background(), jobs)
	w.Flush()
	if !errors.Is(err, streams.ErrStreamsFailed) {
		t.Fatalf("Read returned %v, want ErrStreamsFailed", err)
	}
	res := testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}
	checkRetriesRanOut(t, res, e.fake, 3)
}

func checkRetriesRanOut(t *testing.T, res testbin.Result, fake *fakestripe.Server, attempts int) {
	t.Helper()
	st := res.Statuses()
	if s := st["charges"]; s[len(s)-1] != protocol.StreamIncomplete {
		t.Errorf("charges: statuses %v", s)
	}
	for _, stream := range []string{"coupons", "plans"} {
		if s := st[stream]; s[len(s)-1] != protocol.StreamComplete || len(res.Records(stream)) != len(wantIDs(fake, stream)) {
			t.Errorf("%s: statuses %v, %d records: the other streams go on", stream, s, len(res.Records(stream)))
		}
	}
	// The windows of charges are read in parallel: the error names the
	// request whose retries ran out first, one of those to /v1/charges.
	failedIDs := map[string]bool{}
	for _, r := range fake.Requests() {
		if r.Path == "/v1/charges" && r.Status == http.StatusServiceUnavailable {
			failedIDs[r.RequestID] = true
		}
	}
	errs := res.Errors()
	var id string
	if len(errs) == 1 {
		fmt.Sscanf(errs[0].Message, "Stripe kept failing for stream charges (HTTP 503, request %s", &id)
		id = strings.TrimSuffix(id, ",")
	}
	want := fmt.Sprintf("Stripe kept failing for stream charges (HTTP 503, request %s, %d attempts)", id, attempts)
	if len(errs) != 1 || !failedIDs[id] || errs[0].FailureType != protocol.FailureTransient || errs[0].StreamDescriptor == nil ||
		errs[0].StreamDescriptor.Name != "charges" || !strings.HasPrefix(errs[0].Message, want) {
		t.Errorf("errors %+v; want one transient_error for charges starting %q, naming a request that failed", errs, want)
	}
}

// TestRetriesRunOutInTheBinary is TestRetriesRunOut through the binary,
// which also exits 1.
func TestRetriesRunOutInTheBinary(t *testing.T) {
	e := newEnv(t)
	e.vars = append(e.vars, knobs...)
	e.fake.FailNext("/v1/charges", 1000, http.StatusServiceUnavailable)
	res := e.run("read", "--config", e.config(nil), "--streams", "charges,coupons,plans")
	requireExit(t, res, 1)
	checkRetriesRanOut(t, res, e.fake, 2)
}

// TestSlowAnswersTimeOut: answers slower than the per-request timeout are
// abandoned and retried, and the read completes.
func TestSlowAnswersTimeOut(t *testing.T) {
	e := newEnv(t, fakestripe.WithFaults(fakestripe.FaultPlan{Rate: 0.1, Seed: 3, Slow: 2 * time.Second,
		Kinds: []fakestripe.FaultKind{fakestripe.FaultSlow, fakestripe.FaultStall}}))
	e.vars = append(e.vars, "SOURCE_STRIPE_REQUEST_TIMEOUT=300ms")
	res := e.run("read", "--config", e.config(nil), "--streams", "charges,customers")
	requireExit(t, res, 0)
	for _, stream := range []string{"charges", "customers"} {
		if got, want := sortedIDs(res.Records(stream)), wantIDs(e.fake, stream); !slices.Equal(got, want) {
			t.Errorf("%s: read %d, want %d", stream, len(got), len(want))
		}
	}
	timedOut := 0
	for _, m := range res.Of(protocol.TypeLog) {
		if strings.Contains(m.Log.Message, "no complete response within 300ms") {
			timedOut++
		}
	}
	if timedOut == 0 {
		t.Errorf("no attempt timed out; faults %v", e.fake.InjectedFaults())
	}
}
