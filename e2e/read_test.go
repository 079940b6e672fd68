package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// discover returns the catalog the connector advertises.
func (e *env) discover() *protocol.Catalog {
	e.t.Helper()
	res := e.run("discover", "--config", e.config(nil))
	requireExit(e.t, res, 0)
	return res.Of(protocol.TypeCatalog)[0].Catalog
}

// TestReadEverything reads every stream in full and checks each against
// the fake: the exact set of ids, every record valid against its schema,
// statuses, states, and requests Stripe would accept.
func TestReadEverything(t *testing.T) {
	e := newEnv(t)
	validator := testbin.NewValidator(t, e.discover())
	res := e.run("read", "--config", e.config(nil))
	requireExit(t, res, 0)

	for stream := range kindOf {
		got, want := sortedIDs(res.Records(stream)), wantIDs(e.fake, stream)
		if len(want) == 0 {
			t.Fatalf("%s: the fake holds no objects; the test proves nothing", stream)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: read %d records, the fake holds %d (first ids read: %.5v)", stream, len(got), len(want), got)
		}
		if statuses := res.Statuses()[stream]; !slices.Equal(statuses, []string{"STARTED", "RUNNING", "COMPLETE"}) {
			t.Errorf("%s: statuses %v", stream, statuses)
		}
	}
	for _, r := range res.Records("") {
		if err := validator.Validate(r); err != nil {
			t.Error(err)
		}
	}

	// Every stream checkpoints, counts what its STATE covers, and never
	// repeats a STATE.
	counted := map[string]float64{}
	last := map[string]string{}
	for _, st := range res.States() {
		if st.Type != protocol.StateTypeStream {
			t.Fatalf("state of type %q", st.Type)
		}
		name := st.Stream.StreamDescriptor.Name
		if last[name] == string(st.Stream.StreamState) && st.SourceStats.RecordCount == 0 {
			t.Errorf("%s: the same state twice in a row, no record between: %s", name, st.Stream.StreamState)
		}
		last[name] = string(st.Stream.StreamState)
		counted[name] += st.SourceStats.RecordCount
	}
	for stream := range kindOf {
		if int(counted[stream]) != len(res.Records(stream)) {
			t.Errorf("%s: states count %v records, %d were emitted", stream, counted[stream], len(res.Records(stream)))
		}
	}

	// Child records carry their parent's id.
	for _, r := range res.Records("invoice_line_items") {
		var li struct {
			InvoiceID string `json:"invoice_id"`
		}
		json.Unmarshal(r.Data, &li)
		if !strings.HasPrefix(li.InvoiceID, "in_") {
			t.Fatalf("invoice line without invoice_id: %s", r.Data)
		}
	}
	for _, r := range res.Records("checkout_sessions_line_items") {
		if !strings.Contains(string(r.Data), `"checkout_session_id":"cs_`) {
			t.Fatalf("checkout line item without checkout_session_id: %s", r.Data)
		}
	}

	// Requests: every list asks for full pages, pins the API version, never
	// uses the exact-match created=, and lists canceled subscriptions.
	for _, req := range e.fake.Requests() {
		if req.Status >= 400 {
			t.Errorf("request %s?%s answered %d", req.Path, req.RawQuery, req.Status)
		}
		if req.StripeVersion != "2023-10-16" {
			t.Errorf("request %s pinned Stripe-Version %q", req.Path, req.StripeVersion)
		}
		if req.Path == "/v1/account" {
			continue
		}
		if req.Query.Get("limit") != "100" {
			t.Errorf("request %s?%s does not ask for 100 objects", req.Path, req.RawQuery)
		}
		if req.Query.Has("created") {
			t.Errorf("request %s uses the exact-match created=", req.Path)
		}
		if req.Path == "/v1/subscriptions" && req.Query.Get("status") != "all" {
			t.Errorf("subscriptions listed without status=all: %s", req.RawQuery)
		}
	}
}

// TestChildStreamsSpanPages reads the children that do not fit in one page
// (an invoice with 250 lines, a customer with 150 balance transactions) and
// checks that they come from the child endpoint across several pages.
func TestChildStreamsSpanPages(t *testing.T) {
	e := newEnv(t)
	res := e.run("read", "--config", e.config(nil), "--streams", "invoice_line_items,customer_balance_transactions,subscription_items")
	requireExit(t, res, 0)
	for _, stream := range []string{"invoice_line_items", "customer_balance_transactions", "subscription_items"} {
		if got, want := sortedIDs(res.Records(stream)), wantIDs(e.fake, stream); !slices.Equal(got, want) {
			t.Errorf("%s: read %d, want %d", stream, len(got), len(want))
		}
	}
	pagesAfter := map[string]int{}
	embeddedOnly := 0
	for _, req := range e.fake.Requests() {
		if req.Query.Has("starting_after") {
			pagesAfter[strings.SplitN(req.Path[4:], "/", 3)[0]]++
		}
		if strings.HasSuffix(req.Path, "/lines") {
			embeddedOnly++
		}
	}
	if pagesAfter["invoices"] < 2 || pagesAfter["customers"] < 1 {
		t.Errorf("want the big children read over several pages, got follow-up pages %v", pagesAfter)
	}
	// Invoices with all their lines embedded cost no extra request.
	if invoices := len(e.fake.IDs(fakestripe.KindInvoice)); embeddedOnly >= invoices {
		t.Errorf("read /lines for %d of %d invoices: embedded lines were not used", embeddedOnly, invoices)
	}
}

// TestIncrementalReadReturnsOnlyNew reads, adds objects, and reads again
// from the final state: only the new objects come back.
func TestIncrementalReadReturnsOnlyNew(t *testing.T) {
	e := newEnv(t)
	streams := []string{"charges", "customers", "invoice_items"}
	cat := catalogFile(t, protocol.SyncModeIncremental, streams...)
	first := e.run("read", "--config", e.config(nil), "--catalog", cat)
	requireExit(t, first, 0)
	if len(first.Records("charges")) != len(e.fake.IDs(fakestripe.KindCharge)) {
		t.Fatalf("first read: %d charges", len(first.Records("charges")))
	}

	// New objects, created after the first read began.
	now := time.Now()
	newCharge := e.fake.Create(fakestripe.KindCharge, now, nil)
	newCustomer := e.fake.Create(fakestripe.KindCustomer, now, nil)
	newItem := e.fake.Create(fakestripe.KindInvoiceItem, now, nil)
	// The connector reads up to the start of its run, exclusive of that
	// second: let the clock pass the objects' second.
	time.Sleep(time.Until(now.Truncate(time.Second).Add(1100 * time.Millisecond)))

	second := e.run("read", "--config", e.config(nil), "--catalog", cat, "--state", writeFile(t, "state.json", first.FinalState(t)))
	requireExit(t, second, 0)
	for stream, want := range map[string]string{"charges": newCharge, "customers": newCustomer, "invoice_items": newItem} {
		if got := testbin.IDs(second.Records(stream)); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: second read returned %v, want only the new %s", stream, got, want)
		}
	}
	// Each events cursor moved forward past the new objects.
	before, after := cursors(t, first), cursors(t, second)
	for _, stream := range streams {
		if after[stream] <= before[stream] || after[stream] <= now.Unix() {
			t.Errorf("%s: events cursor went from %d to %d; the new objects were created at %d", stream, before[stream], after[stream], now.Unix())
		}
	}
}

// cursors returns each stream's last events cursor.
func cursors(t *testing.T, res testbin.Result) map[string]int64 {
	out := map[string]int64{}
	for _, st := range res.States() {
		var s struct{ Events struct{ Since int64 } }
		json.Unmarshal(st.Stream.StreamState, &s)
		out[st.Stream.StreamDescriptor.Name] = s.Events.Since
	}
	return out
}

// TestLookbackWindow resumes a stream without events (balance
// transactions) from a cursor with a lookback: exactly the objects created
// since cursor - lookback come back.
func TestLookbackWindow(t *testing.T) {
	e := newEnv(t)
	cursor := fakestripe.DefaultEnd.Add(-10 * 24 * time.Hour).Unix()
	state := []byte(fmt.Sprintf(`[{"type":"STREAM","stream":{"stream_descriptor":{"name":"balance_transactions"},"stream_state":{"state_version":1,"created":%d}}}]`, cursor))
	cat := catalogFile(t, protocol.SyncModeIncremental, "balance_transactions")
	for _, days := range []int{0, 3} {
		res := e.run("read", "--config", e.config(map[string]any{"lookback_window_days": days}), "--catalog", cat, "--state", writeFile(t, "state.json", state))
		requireExit(t, res, 0)
		from := cursor - int64(days)*86400
		var want []string
		for _, raw := range e.fake.Objects(fakestripe.KindBalanceTransaction) {
			var c struct {
				ID      string
				Created int64
			}
			json.Unmarshal(raw, &c)
			if c.Created >= from {
				want = append(want, c.ID)
			}
		}
		slices.Sort(want)
		got := sortedIDs(res.Records("balance_transactions"))
		if !slices.Equal(got, want) || len(want) == 0 || len(want) == len(e.fake.IDs(fakestripe.KindBalanceTransaction)) {
			t.Errorf("lookback %d days: read %d balance transactions, want the %d created since %d", days, len(got), len(want), from)
		}
		// The lookback re-reads below the cursor but never moves it back.
		for _, st := range res.States() {
			var s struct{ Created int64 }
			json.Unmarshal(st.Stream.StreamState, &s)
			if s.Created < cursor {
				t.Errorf("lookback %d days: state moved the cursor back to %d from %d", days, s.Created, cursor)
			}
		}
	}
}

// TestStartDate reads nothing created before start_date.
func TestStartDate(t *testing.T) {
	e := newEnv(t)
	start := fakestripe.DefaultEnd.Add(-5 * 24 * time.Hour)
	res := e.run("read", "--config", e.config(map[string]any{"start_date": start.Format(time.RFC3339)}), "--streams", "charges")
	requireExit(t, res, 0)
	if len(res.Records("charges")) == 0 {
		t.Fatal("no charges since start_date")
	}
	for _, r := range res.Records("charges") {
		var c struct{ Created int64 }
		json.Unmarshal(r.Data, &c)
		if c.Created < start.Unix() {
			t.Fatalf("charge created %d before start_date %d", c.Created, start.Unix())
		}
	}
}

// TestAPIKeyFromEnvironment runs read with only STRIPE_API_KEY, no files.
func TestAPIKeyFromEnvironment(t *testing.T) {
	e := newEnv(t)
	e.vars = append(e.vars, "STRIPE_API_KEY="+fakestripe.DefaultKey)
	res := e.run("read", "--streams", "coupons,plans")
	requireExit(t, res, 0)
	if len(res.Records("coupons")) != len(e.fake.IDs(fakestripe.KindCoupon)) || len(res.Records("plans")) == 0 || len(res.Records("charges")) != 0 {
		t.Fatalf("read %d coupons, %d plans, %d charges", len(res.Records("coupons")), len(res.Records("plans")), len(res.Records("charges")))
	}
}

// TestConnectedAccount reads a connected account through Stripe-Account.
func TestConnectedAccount(t *testing.T) {
	e := newEnv(t, fakestripe.WithConnectedAccounts("acct_connected"))
	res := e.run("read", "--config", e.config(map[string]any{"account_id": "acct_connected"}), "--streams", "coupons")
	requireExit(t, res, 0)
	for _, req := range e.fake.Requests() {
		if req.Path == "/v1/coupons" && req.StripeAccount != "acct_connected" {
			t.Fatalf("list without Stripe-Account: %+v", req)
		}
	}
}

func TestInvalidKeyStopsTheRead(t *testing.T) {
	e := newEnv(t)
	key := "sk_test_revoked_0123456789"
	res := e.run("read", "--config", e.config(map[string]any{"client_secret": key}))
	requireExit(t, res, 1)
	errs := res.Errors()
	if len(errs) != 1 || errs[0].FailureType != protocol.FailureConfig || !strings.Contains(errs[0].Message, "invalid or revoked") {
		t.Fatalf("want one config_error about the key, got %+v", errs)
	}
	if len(res.Records("")) != 0 {
		t.Fatal("records despite an invalid key")
	}
	requireNoSecret(t, res, key)
}

// TestForbiddenStream: a restricted key without one permission fails that
// stream alone, names the permission, and the process exits non-zero.
func TestForbiddenStream(t *testing.T) {
	e := newEnv(t, fakestripe.WithKeys(map[string]fakestripe.KeyInfo{
		"rk_test_limited": {Kinds: []string{fakestripe.KindCoupon, fakestripe.KindPlan, fakestripe.KindEvent}},
	}))
	res := e.run("read", "--config", e.config(map[string]any{"client_secret": "rk_test_limited"}), "--streams", "coupons,charges,plans")
	requireExit(t, res, 1)
	st := res.Statuses()
	if st["charges"][len(st["charges"])-1] != "INCOMPLETE" || st["coupons"][2] != "COMPLETE" || st["plans"][2] != "COMPLETE" {
		t.Fatalf("statuses %v", st)
	}
	errs := res.Errors()
	if len(errs) != 1 || errs[0].StreamDescriptor == nil || errs[0].StreamDescriptor.Name != "charges" ||
		errs[0].FailureType != protocol.FailureConfig || !strings.Contains(errs[0].Message, "rak_charge_read") {
		t.Fatalf("want one config_error for charges naming rak_charge_read, got %+v", errs)
	}
	if len(res.Records("coupons")) == 0 {
		t.Fatal("the permitted streams were not read")
	}
}

// TestForbiddenChildStream: a child stream that may not be read fails alone,
// also when it rides on its parent's backfill: the parent stream is read in
// full and completes.
func TestForbiddenChildStream(t *testing.T) {
	e := newEnv(t, fakestripe.WithKeys(map[string]fakestripe.KeyInfo{
		"rk_test_limited": {Kinds: []string{fakestripe.KindCustomer, fakestripe.KindEvent}},
	}))
	res := e.run("read", "--config", e.config(map[string]any{"client_secret": "rk_test_limited"}), "--streams", "customers,bank_accounts")
	requireExit(t, res, 1)
	st := res.Statuses()
	if st["bank_accounts"][len(st["bank_accounts"])-1] != "INCOMPLETE" || st["customers"][len(st["customers"])-1] != "COMPLETE" {
		t.Fatalf("statuses %v", st)
	}
	if got, want := len(res.Records("customers")), len(wantIDs(e.fake, "customers")); got != want {
		t.Fatalf("customers: %d records, want %d", got, want)
	}
	errs := res.Errors()
	if len(errs) != 1 || errs[0].StreamDescriptor == nil || errs[0].StreamDescriptor.Name != "bank_accounts" ||
		errs[0].FailureType != protocol.FailureConfig {
		t.Fatalf("want one config_error for bank_accounts, got %+v", errs)
	}
}

// TestTransientFailuresAreRetried: 500s and 429s are retried and the read
// completes with every record.
func TestTransientFailuresAreRetried(t *testing.T) {
	e := newEnv(t)
	e.fake.FailNext("/v1/charges", 1, http.StatusInternalServerError)
	e.fake.FailNext("/v1/customers", 1, http.StatusTooManyRequests)
	res := e.run("read", "--config", e.config(nil), "--streams", "charges,customers")
	requireExit(t, res, 0)
	if len(res.Records("charges")) != len(e.fake.IDs(fakestripe.KindCharge)) || len(res.Records("customers")) != len(e.fake.IDs(fakestripe.KindCustomer)) {
		t.Fatalf("read %d charges, %d customers", len(res.Records("charges")), len(res.Records("customers")))
	}
	warned := 0
	for _, m := range res.Of(protocol.TypeLog) {
		if strings.Contains(m.Log.Message, "retrying") {
			warned++
		}
	}
	if warned != 2 {
		t.Errorf("want 2 retry warnings, got %d", warned)
	}
}

// TestDeletedParentIsSkipped: a parent deleted between listing it and
// listing its children is skipped with a warning.
func TestDeletedParentIsSkipped(t *testing.T) {
	var gone string
	e := newEnv(t, fakestripe.WithHook(func(r *http.Request) (bool, int, []byte, http.Header) {
		if gone != "" && r.URL.Path == "/v1/customers/"+gone+"/balance_transactions" {
			return true, http.StatusNotFound, []byte(`{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such customer"}}`), nil
		}
		return false, 0, nil, nil
	}))
	gone = e.fake.IDs(fakestripe.KindCustomer)[0]
	res := e.run("read", "--config", e.config(nil), "--streams", "customer_balance_transactions")
	requireExit(t, res, 0)
	want := len(wantIDs(e.fake, "customer_balance_transactions")) - len(e.fake.ChildIDs(fakestripe.KindCustomerBalanceTransaction, gone))
	if got := len(res.Records("customer_balance_transactions")); got != want {
		t.Fatalf("read %d, want %d", got, want)
	}
	if logs := res.Of(protocol.TypeLog); len(logs) != 1 || !strings.Contains(logs[0].Log.Message, gone) {
		t.Fatalf("want one warning naming %s, got %+v", gone, logs)
	}
}

// TestKeyWithoutEventPermission: change tracking needs events; a restricted
// key without that permission fails the change-tracked streams after their
// backfill, with a message naming the permission.
func TestKeyWithoutEventPermission(t *testing.T) {
	e := newEnv(t, fakestripe.WithKeys(map[string]fakestripe.KeyInfo{
		"rk_test_noevents": {Kinds: []string{fakestripe.KindCoupon}},
	}))
	res := e.run("read", "--config", e.config(map[string]any{"client_secret": "rk_test_noevents"}), "--streams", "coupons")
	requireExit(t, res, 1)
	if len(res.Records("coupons")) != len(e.fake.IDs(fakestripe.KindCoupon)) {
		t.Fatalf("the backfill was not emitted: %d coupons", len(res.Records("coupons")))
	}
	errs := res.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "rak_event_read") || errs[0].FailureType != protocol.FailureConfig {
		t.Fatalf("want one config_error naming rak_event_read, got %+v", errs)
	}
	// The backfill's checkpoint survives: the next run does not backfill again.
	var st struct{ Events struct{ Following bool } }
	json.Unmarshal(res.States()[len(res.States())-1].Stream.StreamState, &st)
	if !st.Events.Following {
		t.Fatalf("the last state does not record the finished backfill: %s", res.States()[len(res.States())-1].Stream.StreamState)
	}
}
