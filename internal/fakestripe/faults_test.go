package fakestripe

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawGet sends one request on a fresh connection (so that Go's transport cannot retry a broken
// one behind the test's back) and reads the whole answer.
func rawGet(t *testing.T, s *Server, path string) (status int, header http.Header, body []byte, err error) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+DefaultKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

func TestFaultsAreReproducible(t *testing.T) {
	plan := FaultPlan{Rate: 0.2, Seed: 7, Kinds: []FaultKind{FaultServerError, FaultConflict}}
	faulted := func() []int {
		s := seeded(t, WithFaults(plan))
		for i := range 60 {
			// Every request twice: a repeat is a new draw, not the same fate.
			rawGet(t, s, fmt.Sprintf("/v1/customers?created[gte]=%d", i%30))
		}
		var out []int
		for i, r := range s.Requests() {
			if r.Fault != "" {
				out = append(out, i)
			}
		}
		return out
	}
	a, b := faulted(), faulted()
	if !slices.Equal(a, b) {
		t.Fatalf("two fakes with the same plan failed different requests: %v and %v", a, b)
	}
	if len(a) == 0 || len(a) > 30 {
		t.Fatalf("%d of 60 requests failed at a rate of 0.2", len(a))
	}
	if plan.Seed++; slices.Equal(a, faulted()) {
		t.Fatal("another seed failed the same requests")
	}
}

func TestFaultRate(t *testing.T) {
	s := New(WithFaults(FaultPlan{Rate: 0.05, Seed: 1, Kinds: []FaultKind{FaultConflict}}))
	defer s.Close()
	const n = 2000
	failed := 0
	for i := range n {
		if status, _, _, _ := rawGet(t, s, fmt.Sprintf("/v1/customers?created[gte]=%d", i)); status == http.StatusConflict {
			failed++
		}
	}
	if failed < n*3/100 || failed > n*7/100 {
		t.Fatalf("%d of %d requests failed at a rate of 5%%", failed, n)
	}
	if got := s.InjectedFaults()[FaultConflict]; got != failed {
		t.Fatalf("InjectedFaults counts %d conflicts, the client saw %d", got, failed)
	}
}

// TestFaultKinds checks that every kind fails a request the way its documentation says.
func TestFaultKinds(t *testing.T) {
	const slow = 60 * time.Millisecond
	for _, kind := range AllFaultKinds() {
		t.Run(string(kind), func(t *testing.T) {
			s := seeded(t, WithFaults(FaultPlan{Rate: 1, Seed: 3, Kinds: []FaultKind{kind}, Slow: slow}))
			variants := map[string]bool{}
			n := 8 // enough to see every variant of a kind
			if kind == FaultSlow || kind == FaultStall {
				n = 3
			}
			for i := range n {
				start := time.Now()
				status, header, body, err := rawGet(t, s, fmt.Sprintf("/v1/customers?limit=%d", 10+i))
				took := time.Since(start)
				variants[describeFault(t, kind, status, header, body, err, took, slow)] = true
			}
			if got := s.InjectedFaults()[kind]; got != n {
				t.Errorf("InjectedFaults()[%s] = %d, want %d", kind, got, n)
			}
			for _, r := range s.Requests() {
				if r.Fault != kind {
					t.Errorf("request %s recorded fault %q, want %q", r.RawQuery, r.Fault, kind)
				}
			}
			want := map[FaultKind]int{FaultServerError: 4, FaultReset: 2, FaultTruncated: 2}[kind]
			if want > 0 && len(variants) != want {
				t.Errorf("%d faults showed variants %v, want %d different ones", n, variants, want)
			}
		})
	}
}

// describeFault checks one faulted answer and names its variant.
func describeFault(t *testing.T, kind FaultKind, status int, header http.Header, body []byte, err error, took, slow time.Duration) string {
	t.Helper()
	validList := func() bool {
		var l list
		return json.Unmarshal(body, &l) == nil && l.Object == "list" && len(l.Data) > 0
	}
	switch kind {
	case FaultServerError:
		if err != nil || status < 500 || status > 504 || status == 501 {
			t.Fatalf("status %d, error %v", status, err)
		}
		if status == http.StatusBadGateway && !strings.HasPrefix(string(body), "<html>") {
			t.Fatalf("502 without an HTML body: %s", body)
		}
		return fmt.Sprint(status)
	case FaultConflict, FaultRateLimit:
		want := map[FaultKind]int{FaultConflict: 409, FaultRateLimit: 429}[kind]
		if err != nil || status != want || !strings.Contains(string(body), `"error"`) {
			t.Fatalf("status %d, error %v, body %s", status, err, body)
		}
	case FaultShouldRetry:
		if status != 400 || header.Get("Stripe-Should-Retry") != "true" {
			t.Fatalf("status %d, Stripe-Should-Retry %q", status, header.Get("Stripe-Should-Retry"))
		}
	case FaultReset:
		if err == nil {
			t.Fatalf("the connection was not dropped: status %d", status)
		}
		if strings.Contains(err.Error(), "reset") {
			return "reset"
		}
		return "eof"
	case FaultTruncated:
		if status != 200 || validList() || !strings.HasPrefix(string(body), `{"object":"list","data":[`) {
			t.Fatalf("status %d, error %v, %d bytes: not a truncated list", status, err, len(body))
		}
		if err != nil {
			return "closed early"
		}
		return "cut by its framing"
	case FaultSlow, FaultStall:
		if err != nil || status != 200 || !validList() {
			t.Fatalf("status %d, error %v: not a whole list", status, err)
		}
		if took < slow {
			t.Fatalf("answered in %s, want at least %s", took, slow)
		}
	}
	return ""
}

func TestStallSendsHeadersFirst(t *testing.T) {
	const slow = 300 * time.Millisecond
	s := seeded(t, WithFaults(FaultPlan{Rate: 1, Kinds: []FaultKind{FaultStall}, Slow: slow}))
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer "+DefaultKey)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if headers := time.Since(start); headers >= slow {
		t.Fatalf("headers after %s: the stall should be in the body", headers)
	}
	if _, err := io.ReadAll(resp.Body); err != nil || time.Since(start) < slow {
		t.Fatalf("body read in %s (%v)", time.Since(start), err)
	}
}

func TestRateLimitBursts(t *testing.T) {
	s := seeded(t, WithFaults(FaultPlan{BurstEvery: 100 * time.Millisecond, BurstLength: 40 * time.Millisecond}))
	statuses := map[int]int{}
	for deadline := time.Now().Add(400 * time.Millisecond); time.Now().Before(deadline); {
		status, _, _, _ := rawGet(t, s, "/v1/coupons")
		statuses[status]++
		time.Sleep(5 * time.Millisecond)
	}
	if statuses[429] == 0 || statuses[200] == 0 || len(statuses) != 2 {
		t.Fatalf("statuses over four bursts: %v", statuses)
	}
	if got := s.InjectedFaults()[FaultRateLimitBurst]; got != statuses[429] {
		t.Fatalf("InjectedFaults counts %d burst 429s, the client saw %d", got, statuses[429])
	}
}

func TestNoFaultsWithoutAPlan(t *testing.T) {
	s := seeded(t)
	for range 20 {
		if status, _, _, err := rawGet(t, s, "/v1/coupons"); status != 200 || err != nil {
			t.Fatalf("status %d, error %v", status, err)
		}
	}
	if len(s.InjectedFaults()) != 0 {
		t.Fatalf("faults without a plan: %v", s.InjectedFaults())
	}
}
