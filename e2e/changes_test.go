package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// replica replays emitted records the way a destination that deduplicates
// by primary key does: per stream and id, the record with the highest
// updated wins (a later one on ties), and is_deleted removes the object.
type replica map[string]map[string]json.RawMessage

func (rep replica) apply(t *testing.T, records []protocol.Record) {
	t.Helper()
	updated := map[string]int64{}
	for _, r := range records {
		if r.Stream == "events" || r.Stream == "balance_transactions" {
			continue // not change-tracked: no updated cursor
		}
		var head struct {
			ID        string `json:"id"`
			Updated   *int64 `json:"updated"`
			IsDeleted bool   `json:"is_deleted"`
		}
		if err := json.Unmarshal(r.Data, &head); err != nil {
			t.Fatal(err)
		}
		if head.Updated == nil {
			t.Fatalf("stream %s: record %s has no updated cursor", r.Stream, head.ID)
		}
		key := r.Stream + "/" + head.ID
		if prev, ok := updated[key]; ok && *head.Updated < prev {
			continue
		}
		updated[key] = *head.Updated
		if rep[r.Stream] == nil {
			rep[r.Stream] = map[string]json.RawMessage{}
		}
		if head.IsDeleted {
			delete(rep[r.Stream], head.ID)
		} else {
			rep[r.Stream][head.ID] = r.Data
		}
	}
}

// parentField names, per child stream, the field of a child record that
// holds its parent's id.
var parentField = map[string]string{
	"bank_accounts":                 "customer",
	"checkout_sessions_line_items":  "checkout_session_id",
	"customer_balance_transactions": "customer",
	"invoice_line_items":            "invoice_id",
	"subscription_items":            "subscription",
}

// requireReplicaMatches checks the replica against the fake's current
// objects: the same ids and the same content for every change-tracked
// stream. Children of a deleted parent count as deleted: Stripe cannot list
// them any more (README, "Deletes").
func requireReplicaMatches(t *testing.T, fake *fakestripe.Server, rep replica) {
	t.Helper()
	for stream, k := range kindOf {
		if stream == "events" || stream == "balance_transactions" {
			continue // not change-tracked
		}
		got := rep[stream]
		if k.Parent != "" {
			parents := rep[map[string]string{
				fakestripe.KindCustomer: "customers", fakestripe.KindInvoice: "invoices",
				fakestripe.KindSubscription: "subscriptions", fakestripe.KindCheckoutSession: "checkout_sessions",
			}[k.Parent]]
			live := map[string]json.RawMessage{}
			for id, data := range got {
				var m map[string]any
				json.Unmarshal(data, &m)
				if _, ok := parents[fmt.Sprint(m[parentField[stream]])]; ok {
					live[id] = data
				}
			}
			got = live
		}
		want := map[string]json.RawMessage{}
		if k.Parent == "" {
			for _, raw := range fake.Objects(k.Kind) {
				want[idOf(raw)] = raw
			}
		} else {
			for _, p := range fake.IDs(k.Parent) {
				for _, raw := range fake.Children(k.Kind, p) {
					want[idOf(raw)] = raw
				}
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: the fake holds nothing; the test proves nothing", stream)
		}
		missing, extra, differ := diffKeys(want, got)
		for _, id := range slices.Sorted(maps.Keys(want)) {
			if g, ok := got[id]; ok && !sameObject(t, want[id], g) {
				differ = append(differ, id)
			}
		}
		if len(missing)+len(extra)+len(differ) > 0 {
			t.Errorf("%s: replica differs from Stripe: missing %v, extra (deleted in Stripe) %v, stale %v", stream, head(missing), head(extra), head(differ))
		}
	}
}

func idOf(raw []byte) string {
	var o struct{ ID string }
	json.Unmarshal(raw, &o)
	return o.ID
}

func diffKeys(want, got map[string]json.RawMessage) (missing, extra, differ []string) {
	for id := range want {
		if _, ok := got[id]; !ok {
			missing = append(missing, id)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra = append(extra, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra, nil
}

func head(ids []string) string {
	if len(ids) > 5 {
		return fmt.Sprintf("%v ... (%d)", ids[:5], len(ids))
	}
	return fmt.Sprint(ids)
}

// sameObject compares a Stripe object with a record, ignoring the fields the
// connector adds.
func sameObject(t *testing.T, stripe, record []byte) bool {
	var a, b map[string]any
	if json.Unmarshal(stripe, &a) != nil || json.Unmarshal(record, &b) != nil {
		t.Fatalf("not JSON objects: %s / %s", stripe, record)
	}
	for _, f := range []string{"updated", "is_deleted", "invoice_id", "checkout_session_id"} {
		if _, ok := a[f]; !ok {
			delete(b, f)
		}
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// workload changes the fake the way an account's traffic does: creations,
// updates (some two in one second, whose order events cannot tell),
// deletions, children added and removed.
func workload(fake *fakestripe.Server, rng *rand.Rand, round int) {
	pick := func(kind string) string {
		ids := fake.IDs(kind)
		return ids[rng.IntN(len(ids))]
	}
	meta := func() map[string]any {
		return map[string]any{"metadata": map[string]any{"round": fmt.Sprint(round), "n": fmt.Sprint(rng.IntN(1000))}}
	}
	for _, kind := range []string{fakestripe.KindCustomer, fakestripe.KindCharge, fakestripe.KindInvoice, fakestripe.KindSubscription,
		fakestripe.KindPaymentIntent, fakestripe.KindRefund, fakestripe.KindPayout, fakestripe.KindDispute, fakestripe.KindTransfer,
		fakestripe.KindCoupon, fakestripe.KindPlan, fakestripe.KindProduct, fakestripe.KindInvoiceItem, fakestripe.KindPromotionCode,
		fakestripe.KindCheckoutSession} {
		fake.Create(kind, time.Time{}, nil)
	}
	for _, kind := range []string{fakestripe.KindCustomer, fakestripe.KindCharge, fakestripe.KindInvoice, fakestripe.KindSubscription,
		fakestripe.KindRefund, fakestripe.KindPayout, fakestripe.KindDispute, fakestripe.KindTransfer, fakestripe.KindCoupon,
		fakestripe.KindPlan, fakestripe.KindProduct, fakestripe.KindPromotionCode} {
		id := pick(kind)
		fake.Update(kind, id, time.Time{}, meta())
		if round%2 == 0 {
			fake.Update(kind, id, time.Time{}, meta()) // same second: a tie
		}
	}
	fake.Delete(fakestripe.KindCustomer, pick(fakestripe.KindCustomer), time.Time{})
	fake.Delete(fakestripe.KindCoupon, pick(fakestripe.KindCoupon), time.Time{})
	fake.Delete(fakestripe.KindProduct, pick(fakestripe.KindProduct), time.Time{})
	fake.Delete(fakestripe.KindInvoiceItem, pick(fakestripe.KindInvoiceItem), time.Time{})
	fake.Delete(fakestripe.KindSubscription, pick(fakestripe.KindSubscription), time.Time{})
	fake.AddChild(fakestripe.KindInvoiceLineItem, pick(fakestripe.KindInvoice), time.Time{})
	fake.AddChild(fakestripe.KindSubscriptionItem, pick(fakestripe.KindSubscription), time.Time{})
	fake.AddChild(fakestripe.KindCustomerBalanceTransaction, pick(fakestripe.KindCustomer), time.Time{})
	customer := pick(fakestripe.KindCustomer)
	fake.AddChild(fakestripe.KindBankAccount, customer, time.Time{})
	if accounts := fake.ChildIDs(fakestripe.KindBankAccount, customer); len(accounts) > 1 {
		fake.Delete(fakestripe.KindBankAccount, accounts[0], time.Time{})
	}
	session := fake.Create(fakestripe.KindCheckoutSession, time.Time{}, nil)
	fake.AddChild(fakestripe.KindCheckoutSessionLineItem, session, time.Time{})
}

// passSecond waits until the wall clock is past the current second: the
// connector reads objects created up to the start of its run, exclusive of
// that second.
func passSecond() {
	now := time.Now()
	time.Sleep(time.Until(now.Truncate(time.Second).Add(1100 * time.Millisecond)))
}

// TestChangesReplayToStripe: a backfill, then several incremental runs
// each from the previous final state, with creates, updates and deletes
// between them. Replaying every record reproduces the fake exactly.
func TestChangesReplayToStripe(t *testing.T) {
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var streams []string
	for s := range kindOf {
		streams = append(streams, s)
	}
	cat := catalogFile(t, protocol.SyncModeIncremental, streams...)
	rep := replica{}
	var state []byte
	for round := 0; round < 4; round++ {
		args := []string{"read", "--config", e.config(nil), "--catalog", cat}
		if state != nil {
			args = append(args, "--state", writeFile(t, "state.json", state))
		}
		e.fake.ResetRequests()
		res := e.run(args...)
		requireExit(t, res, 0)
		rep.apply(t, res.Records(""))
		state = res.FinalState(t)
		if round > 0 {
			// O(changes): no top-level list is read again, except for
			// objects created since the last run where Stripe sends no
			// event (checkout sessions); children only of changed parents.
			for _, req := range e.fake.Requests() {
				k, topLevel := topLevelKinds[req.Path]
				if topLevel && k != fakestripe.KindCheckoutSession && k != fakestripe.KindEvent && k != fakestripe.KindBalanceTransaction {
					t.Errorf("round %d re-listed %s?%s", round, req.Path, req.RawQuery)
				}
			}
			t.Logf("round %d: %d records, %d requests", round, len(res.Records("")), e.fake.RequestCount())
		}
		workload(e.fake, rng, round)
		passSecond()
	}
	res := e.run("read", "--config", e.config(nil), "--catalog", cat, "--state", writeFile(t, "state.json", state))
	requireExit(t, res, 0)
	rep.apply(t, res.Records(""))
	requireReplicaMatches(t, e.fake, rep)
}

// topLevelKinds maps each top-level list path to its kind.
var topLevelKinds = func() map[string]string {
	out := map[string]string{}
	for _, k := range kindOf {
		if k.Parent == "" {
			out[fakestripe.ListPath(k.Kind)] = k.Kind
		}
	}
	return out
}()

// TestStaleEventCursorBackfillsAgain: an events cursor older than Stripe's
// 30-day retention cannot be trusted; the stream reads everything again and
// says why.
func TestStaleEventCursorBackfillsAgain(t *testing.T) {
	e := newEnv(t)
	old := time.Now().Add(-31 * 24 * time.Hour).Unix()
	state := fmt.Sprintf(`{"customers":{"state_version":2,"created":%d,"events":{"since":%d,"following":true}}}`, time.Now().Unix(), old)
	res := e.run("read", "--config", e.config(nil), "--streams", "customers", "--state", writeFile(t, "state.json", []byte(state)))
	requireExit(t, res, 0)
	if got, want := sortedIDs(res.Records("customers")), wantIDs(e.fake, "customers"); !slices.Equal(got, want) {
		t.Fatalf("read %d customers, want all %d again", len(got), len(want))
	}
	warned := false
	for _, m := range res.Of(protocol.TypeLog) {
		warned = warned || (m.Log.Level == protocol.LevelWarn && strings.Contains(m.Log.Message, "older than the 30 days Stripe keeps events"))
	}
	if !warned {
		t.Fatal("no WARN explains the new backfill")
	}
	// A fresh events cursor does not backfill.
	again := e.run("read", "--config", e.config(nil), "--streams", "customers", "--state", writeFile(t, "state2.json", res.FinalState(t)))
	requireExit(t, again, 0)
	if n := len(again.Records("customers")); n != 0 {
		t.Fatalf("a read from a fresh state returned %d customers", n)
	}
}

// TestEventsAtOtherAPIVersionsAreFetched: an event rendered at another API
// version is not passed on as is; the object is fetched at ours, once per
// batch however many events name it.
func TestEventsAtOtherAPIVersionsAreFetched(t *testing.T) {
	e := newEnv(t)
	first := e.run("read", "--config", e.config(nil), "--streams", "invoices")
	requireExit(t, first, 0)
	inv := e.fake.IDs(fakestripe.KindInvoice)[0]
	for i := 0; i < 5; i++ {
		e.fake.RecordEvent("invoice.updated", fakestripe.KindInvoice, inv, time.Now().Add(time.Duration(i-5)*time.Second), nil)
	}
	e.fake.SetEventAPIVersion("2020-08-27")
	e.fake.RecordEvent("invoice.paid", fakestripe.KindInvoice, inv, time.Time{}, nil)
	passSecond()
	e.fake.ResetRequests()
	res := e.run("read", "--config", e.config(nil), "--streams", "invoices", "--state", writeFile(t, "state.json", first.FinalState(t)))
	requireExit(t, res, 0)
	if ids := testbin.IDs(res.Records("invoices")); !slices.Equal(ids, []string{inv}) {
		t.Fatalf("want the changed invoice once, got %v", ids)
	}
	fetches := 0
	for _, req := range e.fake.Requests() {
		if req.Path == "/v1/invoices/"+inv {
			fetches++
		}
	}
	if fetches != 1 {
		t.Fatalf("fetched the invoice %d times, want once", fetches)
	}
}
