package fakestripe

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testEnd is where the default dataset ends; mutations happen after it.
var testEnd = DefaultEnd

// seeded returns a running fake holding the default dataset.
func seeded(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	t.Cleanup(s.Close)
	s.Seed(DefaultDataset())
	return s
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return m
}

func (r response) errorBody(t *testing.T) map[string]any {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error in %s", r.body)
	}
	return e
}

// list is a decoded list response.
type list struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
	URL     string            `json:"url"`
}

type head struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
}

func getKey(t *testing.T, s *Server, key, path string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Stripe-Version", APIVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func get(t *testing.T, s *Server, path string) response {
	t.Helper()
	return getKey(t, s, DefaultKey, path)
}

func getList(t *testing.T, s *Server, path string) list {
	t.Helper()
	r := get(t, s, path)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	var l list
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	if l.Object != "list" {
		t.Fatalf("GET %s: object %q", path, l.Object)
	}
	return l
}

func heads(t *testing.T, raws []json.RawMessage) []head {
	t.Helper()
	out := make([]head, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func ids(hs []head) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

// walk pages through path forward with starting_after and returns every id, checking has_more.
func walk(t *testing.T, s *Server, path string, limit int) []string {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var all []string
	after := ""
	for pages := 0; ; pages++ {
		q := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if after != "" {
			q += "&starting_after=" + after
		}
		l := getList(t, s, q)
		hs := heads(t, l.Data)
		if len(hs) > limit {
			t.Fatalf("page of %d with limit %d", len(hs), limit)
		}
		all = append(all, ids(hs)...)
		if !l.HasMore {
			return all
		}
		if len(hs) == 0 {
			t.Fatalf("empty page with has_more at %s", q)
		}
		after = hs[len(hs)-1].ID
		if pages > 10000 {
			t.Fatal("pagination does not end")
		}
	}
}

func TestPaginationIsNewestFirstWithoutGapsWhileObjectsShareSeconds(t *testing.T) {
	s := seeded(t)
	all := heads(t, s.Objects(KindCharge))
	perSecond := map[int64]int{}
	for i, h := range all {
		perSecond[h.Created]++
		if i > 0 && !(h.Created < all[i-1].Created || h.Created == all[i-1].Created && h.ID < all[i-1].ID) {
			t.Fatalf("charges not newest first at %d: %+v after %+v", i, h, all[i-1])
		}
	}
	busiest := 0
	for _, n := range perSecond {
		busiest = max(busiest, n)
	}
	if busiest <= maxLimit {
		t.Fatalf("no second holds more than a page of charges (busiest: %d)", busiest)
	}
	for _, limit := range []int{1, 7, 10, 100} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			got := walk(t, s, "/v1/charges", limit)
			if !slices.Equal(got, ids(all)) {
				t.Fatalf("walked %d charges, stored %d; lists differ", len(got), len(all))
			}
		})
	}
	t.Run("default limit", func(t *testing.T) {
		if l := getList(t, s, "/v1/charges"); len(l.Data) != defaultLimit || !l.HasMore || l.URL != "/v1/charges" {
			t.Fatalf("got %d, has_more %v, url %q", len(l.Data), l.HasMore, l.URL)
		}
	})
}

func TestEndingBeforePagesBackwards(t *testing.T) {
	s := seeded(t)
	all := s.IDs(KindCharge)
	// From the oldest charge back to the newest, 9 at a time.
	var got []string
	before := all[len(all)-1]
	for {
		l := getList(t, s, "/v1/charges?limit=9&ending_before="+before)
		page := ids(heads(t, l.Data))
		got = append(page, got...)
		if !l.HasMore {
			break
		}
		before = page[0]
	}
	if want := all[:len(all)-1]; !slices.Equal(got, want) {
		t.Fatalf("paging backwards found %d charges, want %d", len(got), len(want))
	}
}

func TestCreatedFilters(t *testing.T) {
	s := seeded(t)
	all := heads(t, s.Objects(KindCharge))
	// The busiest second, so that the bounds cut through objects sharing a second.
	count := map[int64]int{}
	var pivot int64
	for _, h := range all {
		count[h.Created]++
		if count[h.Created] > count[pivot] {
			pivot = h.Created
		}
	}
	tests := []struct {
		query string
		keep  func(c int64) bool
	}{
		{fmt.Sprintf("created[gt]=%d", pivot), func(c int64) bool { return c > pivot }},
		{fmt.Sprintf("created[gte]=%d", pivot), func(c int64) bool { return c >= pivot }},
		{fmt.Sprintf("created[lt]=%d", pivot), func(c int64) bool { return c < pivot }},
		{fmt.Sprintf("created[lte]=%d", pivot), func(c int64) bool { return c <= pivot }},
		{fmt.Sprintf("created=%d", pivot), func(c int64) bool { return c == pivot }},
		{fmt.Sprintf("created[gte]=%d&created[lt]=%d", pivot-86400, pivot+1), func(c int64) bool { return c >= pivot-86400 && c < pivot+1 }},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var want []string
			for _, h := range all {
				if tt.keep(h.Created) {
					want = append(want, h.ID)
				}
			}
			if got := walk(t, s, "/v1/charges?"+tt.query, 100); !slices.Equal(got, want) {
				t.Fatalf("got %d charges, want %d", len(got), len(want))
			}
		})
	}
	t.Run("exact created is recorded", func(t *testing.T) {
		var exact int
		for _, r := range s.Requests() {
			if r.Query.Has("created") {
				exact++
			}
		}
		if exact == 0 {
			t.Fatal("no request with created= recorded")
		}
	})
}

func TestSubscriptionsHideCanceledUnlessStatusAll(t *testing.T) {
	s := seeded(t)
	d := DefaultDataset()
	all := walk(t, s, "/v1/subscriptions?status=all", 100)
	live := walk(t, s, "/v1/subscriptions", 100)
	canceled := walk(t, s, "/v1/subscriptions?status=canceled", 100)
	if len(all) != d.Counts[KindSubscription] || len(canceled) != d.CanceledSubscriptions || len(live) != len(all)-len(canceled) {
		t.Fatalf("all %d, live %d, canceled %d", len(all), len(live), len(canceled))
	}

	id := live[0]
	s.Delete(KindSubscription, id, testEnd)
	if slices.Contains(walk(t, s, "/v1/subscriptions", 100), id) {
		t.Fatal("canceled subscription still listed without status=all")
	}
	if !slices.Contains(walk(t, s, "/v1/subscriptions?status=all", 100), id) {
		t.Fatal("canceled subscription not listed with status=all")
	}
	sub := get(t, s, "/v1/subscriptions/"+id).json(t)
	if sub["status"] != "canceled" || sub["canceled_at"] != float64(testEnd.Unix()) {
		t.Fatalf("canceled subscription: status %v canceled_at %v", sub["status"], sub["canceled_at"])
	}
	ev := getList(t, s, "/v1/events?limit=1&type=customer.subscription.deleted")
	if len(ev.Data) != 1 || !strings.Contains(string(ev.Data[0]), id) {
		t.Fatalf("no customer.subscription.deleted event for %s", id)
	}
}

func TestSubscriptionItemsNeedTheirSubscription(t *testing.T) {
	s := seeded(t)
	r := get(t, s, "/v1/subscription_items")
	if e := r.errorBody(t); r.status != 400 || e["message"] != "Missing required param: subscription." || e["param"] != "subscription" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	r = get(t, s, "/v1/subscription_items?subscription=sub_nope")
	if e := r.errorBody(t); r.status != 404 || e["code"] != "resource_missing" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	sub := s.IDs(KindSubscription)[0]
	items := walk(t, s, "/v1/subscription_items?subscription="+sub, 3)
	if want := s.ChildIDs(KindSubscriptionItem, sub); len(items) == 0 || !slices.Equal(items, want) {
		t.Fatalf("items %v, stored %v", items, want)
	}
}

func TestParameterValidation(t *testing.T) {
	s := seeded(t)
	inv := s.IDs(KindInvoice)[0]
	tests := []struct {
		path, param, message string
	}{
		{"/v1/charges?foo=1", "foo", "Received unknown parameter: foo"},
		{"/v1/charges?created[since]=1", "created[since]", "Received unknown parameter: created[since]"},
		{"/v1/invoices/" + inv + "/lines?created[gte]=1", "created[gte]", "Received unknown parameter: created[gte]"},
		{"/v1/customers/cus_x/balance_transactions?created=1", "created", "Received unknown parameter: created"},
		{"/v1/charges?status=all", "status", "Received unknown parameter: status"},
		{"/v1/charges?customer=cus_x", "customer", "fakestripe does not implement"},
		{"/v1/charges?limit=0", "limit", "greater than or equal to 1"},
		{"/v1/charges?limit=101", "limit", "less than or equal to 100"},
		{"/v1/charges?limit=ten", "limit", "Invalid integer: ten"},
		{"/v1/charges?created[gte]=yesterday", "created[gte]", "Invalid integer: yesterday"},
		{"/v1/charges?expand[]=customer", "expand[]", "cannot be expanded"},
		{"/v1/charges?starting_after=ch_nope", "starting_after", "No such charge: 'ch_nope'"},
		{"/v1/charges?ending_before=ch_nope", "ending_before", "No such charge: 'ch_nope'"},
		{"/v1/charges/" + s.IDs(KindCharge)[0] + "?limit=1", "limit", "Received unknown parameter: limit"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := get(t, s, tt.path)
			e := r.errorBody(t)
			if r.status != 400 || e["type"] != "invalid_request_error" || e["param"] != tt.param ||
				!strings.Contains(fmt.Sprint(e["message"]), tt.message) {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
	}
	for _, ok := range []string{
		"/v1/charges?expand[]=data.customer", "/v1/charges?expand[0]=data.customer&expand[1]=data.invoice",
		"/v1/events?types[]=customer.created&types[]=charge.succeeded", "/v1/events?types[0]=customer.created",
		"/v1/subscriptions?status=all&created[gte]=0", "/v1/charges/" + s.IDs(KindCharge)[0] + "?expand[]=customer",
	} {
		if r := get(t, s, ok); r.status != 200 {
			t.Errorf("GET %s: %d %s", ok, r.status, r.body)
		}
	}
	if r := get(t, s, "/v1/nothing"); r.status != 404 {
		t.Errorf("unknown URL: %d", r.status)
	}
}

func TestAuthentication(t *testing.T) {
	const restricted = "rk_test_restricted1234"
	s := seeded(t, WithKeys(map[string]KeyInfo{
		DefaultKey: {},
		restricted: {Kinds: []string{KindCharge}},
	}), WithAccountID("acct_test1"))

	for _, key := range []string{"", "sk_test_wrongkey5678", "pk_test_publishable"} {
		r := getKey(t, s, key, "/v1/charges")
		msg := fmt.Sprint(r.errorBody(t)["message"])
		if r.status != 401 || (key != "" && strings.Contains(msg, key)) {
			t.Errorf("key %q: %d %s", key, r.status, r.body)
		}
	}
	if r := getKey(t, s, "sk_test_wrongkey5678", "/v1/charges"); !strings.Contains(string(r.body), "sk_test_********5678") {
		t.Errorf("unknown key not masked like Stripe: %s", r.body)
	}
	if r := getKey(t, s, restricted, "/v1/charges"); r.status != 200 {
		t.Errorf("restricted key on charges: %d %s", r.status, r.body)
	}
	r := getKey(t, s, restricted, "/v1/customers")
	msg := fmt.Sprint(r.errorBody(t)["message"])
	if r.status != 403 || !strings.Contains(msg, "rak_customer_read") || !strings.Contains(msg, "acct_test1") ||
		strings.Contains(msg, restricted) {
		t.Errorf("restricted key on customers: %d %s", r.status, r.body)
	}
	acct := getKey(t, s, restricted, "/v1/account")
	if acct.status != 200 || acct.json(t)["id"] != "acct_test1" {
		t.Errorf("account: %d %s", acct.status, acct.body)
	}
	for _, rec := range s.Requests() {
		if rec.RequestID == "" || strings.Contains(rec.Key, "restricted") || strings.Contains(rec.Key, "wrongkey") {
			t.Errorf("record %+v", rec)
		}
	}
}

func TestEveryResponseHasRequestIDAndJSON(t *testing.T) {
	s := seeded(t)
	s.FailNext("/v1/payouts", 1, 500)
	seen := map[string]bool{}
	for _, path := range []string{"/v1/charges", "/v1/foo", "/v1/charges?foo=1", "/v1/payouts", "/v1/account"} {
		r := get(t, s, path)
		id := r.header.Get("Request-Id")
		if !strings.HasPrefix(id, "req_") || seen[id] || r.header.Get("Content-Type") != "application/json" || !json.Valid(r.body) {
			t.Errorf("GET %s: %d headers %v", path, r.status, r.header)
		}
		seen[id] = true
	}
	if r := getKey(t, s, "", "/v1/charges"); r.header.Get("Request-Id") == "" {
		t.Error("401 without Request-Id")
	}
}

func TestStripeVersionIsCheckedAndRecorded(t *testing.T) {
	s := seeded(t)
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/v1/charges", nil)
	req.Header.Set("Authorization", "Bearer "+DefaultKey)
	req.Header.Set("Stripe-Version", "2020-08-27")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("old Stripe-Version: %d", resp.StatusCode)
	}
	get(t, s, "/v1/charges")
	recs := s.Requests()
	if len(recs) != 2 || recs[0].StripeVersion != "2020-08-27" || recs[1].StripeVersion != APIVersion || recs[1].Status != 200 {
		t.Fatalf("records %+v", recs)
	}
	if s.RequestCount() != 2 {
		t.Fatalf("RequestCount %d", s.RequestCount())
	}
	s.ResetRequests()
	if s.RequestCount() != 0 || len(s.Requests()) != 0 {
		t.Fatal("ResetRequests kept records")
	}
}

func TestFailNext(t *testing.T) {
	s := seeded(t)
	s.FailNext("/v1/charges", 2, http.StatusTooManyRequests)
	for i := range 2 {
		r := get(t, s, "/v1/charges")
		if e := r.errorBody(t); r.status != 429 || e["code"] != "rate_limit" || e["type"] != "invalid_request_error" {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if r := get(t, s, "/v1/customers"); r.status != 200 {
		t.Fatalf("other path failed: %d", r.status)
	}
	if r := get(t, s, "/v1/charges"); r.status != 200 {
		t.Fatalf("third request: %d", r.status)
	}
	s.FailNext("/v1/", 1, 503)
	if r := get(t, s, "/v1/events"); r.status != 503 || r.errorBody(t)["type"] != "api_error" {
		t.Fatalf("503: %d %s", r.status, r.body)
	}
}

func TestHookAndRateLimit(t *testing.T) {
	hooked := New(WithHook(func(r *http.Request) (bool, int, []byte, http.Header) {
		if r.URL.Path == "/v1/charges" {
			return true, 409, nil, http.Header{"Stripe-Should-Retry": {"true"}}
		}
		return false, 0, nil, nil
	}))
	defer hooked.Close()
	if r := get(t, hooked, "/v1/charges"); r.status != 409 || r.header.Get("Stripe-Should-Retry") != "true" || r.errorBody(t)["code"] != "lock_timeout" {
		t.Fatalf("hook: %d %v %s", r.status, r.header, r.body)
	}
	if r := get(t, hooked, "/v1/customers"); r.status != 200 {
		t.Fatalf("unhooked: %d", r.status)
	}

	limited := New(WithRateLimit(5))
	defer limited.Close()
	var tooMany int
	for range 12 {
		if r := get(t, limited, "/v1/customers"); r.status == 429 {
			tooMany++
		}
	}
	if tooMany < 5 {
		t.Fatalf("%d of 12 quick requests were refused with a limit of 5/s", tooMany)
	}
}

func TestLatency(t *testing.T) {
	s := New(WithLatency(30*time.Millisecond, 10*time.Millisecond))
	defer s.Close()
	start := time.Now()
	get(t, s, "/v1/customers")
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("answered in %v", d)
	}
}

func TestDeletedCustomers(t *testing.T) {
	s := seeded(t)
	id := s.IDs(KindCustomer)[0] // the first seeded customer has the many balance transactions
	if n := len(s.ChildIDs(KindCustomerBalanceTransaction, id)); n < 2 {
		t.Fatalf("customer has %d balance transactions", n)
	}
	at := testEnd.Add(time.Minute)
	sub := s.Create(KindSubscription, at, map[string]any{"customer": id})
	s.Delete(KindCustomer, id, at)
	if slices.Contains(walk(t, s, "/v1/subscriptions", 100), sub) || !slices.Contains(walk(t, s, "/v1/subscriptions?status=canceled", 100), sub) {
		t.Fatal("the deleted customer's subscription is not canceled")
	}
	if slices.Contains(walk(t, s, "/v1/customers", 100), id) {
		t.Fatal("deleted customer listed")
	}
	got := get(t, s, "/v1/customers/"+id).json(t)
	if want := map[string]any{"id": id, "object": "customer", "deleted": true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("retrieve deleted customer: %v", got)
	}
	if r := get(t, s, "/v1/customers/"+id+"/balance_transactions"); r.status != 404 || r.errorBody(t)["code"] != "resource_missing" {
		t.Fatalf("children of deleted customer: %d %s", r.status, r.body)
	}
	if r := get(t, s, "/v1/customers?starting_after="+id); r.status != 400 {
		t.Fatalf("deleted customer as cursor: %d", r.status)
	}
	ev := getList(t, s, fmt.Sprintf("/v1/events?type=customer.deleted&created=%d", at.Unix()))
	var e struct {
		Type string `json:"type"`
		Data struct {
			Object map[string]any `json:"object"`
		} `json:"data"`
	}
	if len(ev.Data) != 1 || json.Unmarshal(ev.Data[0], &e) != nil || e.Data.Object["id"] != id || e.Data.Object["email"] == nil && e.Data.Object["created"] == nil {
		t.Fatalf("customer.deleted event: %s", ev.Data)
	}
	if r := get(t, s, "/v1/customers/cus_unknown"); r.status != 404 || r.errorBody(t)["code"] != "resource_missing" {
		t.Fatalf("unknown customer: %d %s", r.status, r.body)
	}
}

// checkEmbedded checks that every parent's embedded list is the first page of its child endpoint.
func checkEmbedded(t *testing.T, s *Server, field, childKind string, childURL func(string) string) (sawMore bool) {
	t.Helper()
	for _, raw := range s.Objects(mustKind(childKind).parent) {
		var p map[string]json.RawMessage
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		var id string
		_ = json.Unmarshal(p["id"], &id)
		var emb struct {
			list
			TotalCount int `json:"total_count"`
		}
		if err := json.Unmarshal(p[field], &emb); err != nil {
			t.Fatal(err)
		}
		endpoint := getList(t, s, childURL(id)+"limit=10")
		stored := s.ChildIDs(childKind, id)
		if emb.URL == "" || emb.HasMore != endpoint.HasMore || emb.TotalCount != len(stored) ||
			!slices.Equal(ids(heads(t, emb.Data)), ids(heads(t, endpoint.Data))) {
			t.Fatalf("%s %s: embedded %s differs from %s", mustKind(childKind).parent, id, field, childURL(id))
		}
		sawMore = sawMore || emb.HasMore
	}
	return sawMore
}

func TestEmbeddedListsMatchChildEndpoints(t *testing.T) {
	s := seeded(t)
	lines := func(id string) string { return "/v1/invoices/" + id + "/lines?" }
	items := func(id string) string { return "/v1/subscription_items?subscription=" + id + "&" }
	if !checkEmbedded(t, s, "lines", KindInvoiceLineItem, lines) {
		t.Error("no invoice has more lines than it embeds")
	}
	if !checkEmbedded(t, s, "items", KindSubscriptionItem, items) {
		t.Error("no subscription has more items than it embeds")
	}
	inv := s.IDs(KindInvoice)[3]
	s.Update(KindInvoice, inv, testEnd, map[string]any{"description": "more lines"})
	line := s.AddChild(KindInvoiceLineItem, inv, testEnd.Add(time.Hour))
	checkEmbedded(t, s, "lines", KindInvoiceLineItem, lines)
	var invoice struct {
		Lines list `json:"lines"`
	}
	if err := json.Unmarshal(get(t, s, "/v1/invoices/"+inv).body, &invoice); err != nil || ids(heads(t, invoice.Lines.Data))[0] != line {
		t.Fatalf("new line %s is not first in invoice.lines", line)
	}
	if got := walk(t, s, "/v1/invoices/"+s.IDs(KindInvoice)[0]+"/lines", 100); len(got) < 2 {
		t.Fatalf("lines: %d", len(got))
	}
}

func TestBigChildListsSpanPages(t *testing.T) {
	s := seeded(t)
	d := DefaultDataset()
	var bigInvoice, bigCustomer int
	for _, id := range s.IDs(KindInvoice) {
		bigInvoice = max(bigInvoice, len(walk(t, s, "/v1/invoices/"+id+"/lines", 100)))
	}
	for _, id := range s.IDs(KindCustomer) {
		bigCustomer = max(bigCustomer, len(walk(t, s, "/v1/customers/"+id+"/balance_transactions", 100)))
	}
	if bigInvoice != d.BigInvoiceLines || bigCustomer != d.BigCustomerBalanceTransactions {
		t.Fatalf("biggest invoice has %d lines, biggest customer %d balance transactions", bigInvoice, bigCustomer)
	}
}

func TestMutationsRecordEvents(t *testing.T) {
	s := seeded(t)
	at := testEnd.Add(time.Hour)
	cus := s.Create(KindCustomer, at, map[string]any{"email": "jenny@example.com"})
	s.Update(KindCustomer, cus, at.Add(time.Second), map[string]any{"email": "jenny.rosen@example.com", "metadata": map[string]string{"a": "b"}})
	ch := s.Create(KindCharge, at, map[string]any{"customer": cus})
	refunded := s.RecordEvent("charge.refunded", KindCharge, ch, at.Add(2*time.Second), map[string]any{"refunded": false})
	pi := s.Create(KindPaymentIntent, at, nil)
	s.Update(KindPaymentIntent, pi, at.Add(3*time.Second), map[string]any{"description": "no event for this"})

	l := getList(t, s, fmt.Sprintf("/v1/events?created[gte]=%d&limit=100", at.Unix()))
	type event struct {
		ID         string `json:"id"`
		Object     string `json:"object"`
		Type       string `json:"type"`
		APIVersion string `json:"api_version"`
		Created    int64  `json:"created"`
		Data       struct {
			Object   map[string]any `json:"object"`
			Previous map[string]any `json:"previous_attributes"`
		} `json:"data"`
	}
	var evs []event
	for _, raw := range l.Data {
		var e event
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
		if e.Object != "event" || e.APIVersion != APIVersion {
			t.Errorf("event %+v", e)
		}
	}
	// Newest first; payment_intent.updated does not exist in Stripe.
	want := []string{"charge.refunded", "customer.updated", "payment_intent.created", "customer.created", "charge.succeeded"}
	slices.Sort(types[2:])
	slices.Sort(want[2:])
	if !slices.Equal(types, want) {
		t.Fatalf("event types %v, want %v", types, want)
	}
	upd := evs[1]
	if upd.Data.Object["email"] != "jenny.rosen@example.com" || upd.Data.Previous["email"] != "jenny@example.com" ||
		fmt.Sprint(upd.Data.Previous["metadata"]) != "map[]" {
		t.Errorf("customer.updated data: %+v", upd.Data)
	}
	if evs[0].ID != refunded || evs[0].Data.Object["id"] != ch || evs[0].Data.Previous["refunded"] != false {
		t.Errorf("charge.refunded: %+v", evs[0])
	}
	t.Run("type filters", func(t *testing.T) {
		q := fmt.Sprintf("/v1/events?created[gte]=%d&", at.Unix())
		if got := walk(t, s, q+"types[]=customer.created&types[]=charge.refunded", 100); len(got) != 2 {
			t.Errorf("types[]: %d events", len(got))
		}
		if got := walk(t, s, q+"type=customer.*", 100); len(got) != 2 {
			t.Errorf("type=customer.*: %d events", len(got))
		}
		if r := get(t, s, q+"type=a&types[]=b"); r.status != 400 {
			t.Errorf("type and types: %d", r.status)
		}
	})
}

func TestObjectsKeepTheirFixtureFields(t *testing.T) {
	s := seeded(t)
	tmpls := templates()
	for _, kind := range Kinds() {
		objs := s.Objects(kind)
		if len(objs) == 0 {
			t.Errorf("no %s seeded", kind)
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(objs[0], &m); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		for _, f := range tmpls[kind] {
			if _, ok := m[f.key]; !ok {
				t.Errorf("%s lost fixture field %s", kind, f.key)
			}
		}
		var obj string
		_ = json.Unmarshal(m["object"], &obj)
		if obj != kind || len(m) != len(tmpls[kind]) {
			t.Errorf("%s: object %q, %d fields, fixture %d", kind, obj, len(m), len(tmpls[kind]))
		}
	}
	var ba map[string]any
	_ = json.Unmarshal(s.Objects(KindBankAccount)[0], &ba)
	if cus, _ := ba["customer"].(string); !strings.HasPrefix(cus, "cus_") {
		t.Errorf("bank account customer %v", ba["customer"])
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	a, b := NewUnstarted(), NewUnstarted()
	d := DefaultDataset()
	a.Seed(d)
	b.Seed(d)
	for _, kind := range Kinds() {
		if !slices.Equal(a.IDs(kind), b.IDs(kind)) {
			t.Errorf("%s ids differ", kind)
		}
	}
	x, y := a.Objects(KindInvoice), b.Objects(KindInvoice)
	if string(x[0]) != string(y[0]) {
		t.Error("invoices differ")
	}
	prefixes := map[string]string{KindCharge: "ch_", KindCustomer: "cus_", KindInvoice: "in_", KindSubscription: "sub_",
		KindSubscriptionItem: "si_", KindInvoiceLineItem: "il_", KindCheckoutSession: "cs_", KindCheckoutSessionLineItem: "li_",
		KindBankAccount: "ba_", KindCustomerBalanceTransaction: "cbtxn_", KindBalanceTransaction: "txn_", KindDispute: "dp_",
		KindEvent: "evt_", KindInvoiceItem: "ii_", KindPaymentIntent: "pi_", KindPayout: "po_", KindPlan: "price_",
		KindProduct: "prod_", KindPromotionCode: "promo_", KindRefund: "re_", KindTransfer: "tr_"}
	for kind, p := range prefixes {
		if id := a.IDs(kind)[0]; !strings.HasPrefix(id, p) {
			t.Errorf("%s id %s", kind, id)
		}
	}
}

func TestConcurrentReadsAndMutations(t *testing.T) {
	s := seeded(t)
	var wg sync.WaitGroup
	for _, path := range []string{"/v1/customers", "/v1/charges", "/v1/events", "/v1/subscriptions?status=all", "/v1/invoices"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				u, _ := url.Parse(s.URL() + path)
				req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
				req.Header.Set("Authorization", "Bearer "+DefaultKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("GET %s: %d", path, resp.StatusCode)
				}
			}
		}()
	}
	for i := range 20 {
		at := testEnd.Add(time.Duration(i) * time.Second)
		id := s.Create(KindCustomer, at, nil)
		s.Update(KindCustomer, id, at, map[string]any{"name": "n"})
		s.AddChild(KindInvoiceLineItem, s.IDs(KindInvoice)[i], at)
		if i%3 == 0 {
			s.Delete(KindCustomer, id, at)
		}
	}
	wg.Wait()
}

func TestListenRefusesNonLoopback(t *testing.T) {
	if _, err := Listen("0.0.0.0:0"); err == nil {
		t.Fatal("listening on 0.0.0.0 was allowed")
	}
	s := New()
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatal("not on 127.0.0.1")
	}
}

func BenchmarkSeed200kCharges(b *testing.B) {
	for range b.N {
		s := NewUnstarted()
		d := DefaultDataset()
		d.Counts = map[string]int{KindCustomer: 1000, KindCharge: 200_000}
		s.Seed(d)
	}
}

func BenchmarkListPage(b *testing.B) {
	s := NewUnstarted()
	d := DefaultDataset()
	d.Counts = map[string]int{KindCustomer: 1000, KindCharge: 200_000}
	s.Seed(d)
	ids := s.IDs(KindCharge)
	req, _ := http.NewRequest(http.MethodGet, "/v1/charges?limit=100&starting_after="+ids[len(ids)/2], nil)
	req.Header.Set("Authorization", "Bearer "+DefaultKey)
	b.ResetTimer()
	for range b.N {
		w := &discard{h: http.Header{}}
		s.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatal(w.status)
		}
	}
}

type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(s int)           { d.status = s }
