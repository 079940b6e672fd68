// Package e2e runs the built connector binary against the in-repo fake
// Stripe and checks what it prints, as a platform would see it.
package e2e

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// kindOf maps each stream to the fake's object kind; child streams also name
// their parent kind.
var kindOf = map[string]struct{ kind, parent string }{
	"balance_transactions":          {kind: fakestripe.KindBalanceTransaction},
	"charges":                       {kind: fakestripe.KindCharge},
	"checkout_sessions":             {kind: fakestripe.KindCheckoutSession},
	"coupons":                       {kind: fakestripe.KindCoupon},
	"customers":                     {kind: fakestripe.KindCustomer},
	"disputes":                      {kind: fakestripe.KindDispute},
	"events":                        {kind: fakestripe.KindEvent},
	"invoice_items":                 {kind: fakestripe.KindInvoiceItem},
	"invoices":                      {kind: fakestripe.KindInvoice},
	"payment_intents":               {kind: fakestripe.KindPaymentIntent},
	"payouts":                       {kind: fakestripe.KindPayout},
	"plans":                         {kind: fakestripe.KindPlan},
	"products":                      {kind: fakestripe.KindProduct},
	"promotion_codes":               {kind: fakestripe.KindPromotionCode},
	"refunds":                       {kind: fakestripe.KindRefund},
	"subscriptions":                 {kind: fakestripe.KindSubscription},
	"transfers":                     {kind: fakestripe.KindTransfer},
	"bank_accounts":                 {kind: fakestripe.KindBankAccount, parent: fakestripe.KindCustomer},
	"checkout_sessions_line_items":  {kind: fakestripe.KindCheckoutSessionLineItem, parent: fakestripe.KindCheckoutSession},
	"customer_balance_transactions": {kind: fakestripe.KindCustomerBalanceTransaction, parent: fakestripe.KindCustomer},
	"invoice_line_items":            {kind: fakestripe.KindInvoiceLineItem, parent: fakestripe.KindInvoice},
	"subscription_items":            {kind: fakestripe.KindSubscriptionItem, parent: fakestripe.KindSubscription},
}

// wantIDs is every id the fake holds for a stream, sorted.
func wantIDs(fake *fakestripe.Server, stream string) []string {
	k := kindOf[stream]
	var ids []string
	if k.parent == "" {
		ids = fake.IDs(k.kind)
	} else {
		for _, p := range fake.IDs(k.parent) {
			ids = append(ids, fake.ChildIDs(k.kind, p)...)
		}
	}
	sort.Strings(ids)
	return ids
}

func sortedIDs(records []protocol.Record) []string {
	ids := testbin.IDs(records)
	sort.Strings(ids)
	return ids
}

type env struct {
	t    *testing.T
	fake *fakestripe.Server
	vars []string
}

// newEnv starts a fake Stripe seeded with the default dataset; it is
// stopped when the test ends.
func newEnv(t *testing.T, opts ...fakestripe.Option) *env {
	t.Helper()
	fake := fakestripe.New(opts...)
	t.Cleanup(fake.Close)
	fake.Seed(fakestripe.DefaultDataset())
	return &env{t: t, fake: fake, vars: []string{"STRIPE_API_BASE=" + fake.URL()}}
}

// config writes a config file for the fake's account.
func (e *env) config(fields map[string]any) string {
	cfg := map[string]any{"account_id": fakestripe.DefaultAccountID, "client_secret": fakestripe.DefaultKey}
	for k, v := range fields {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	return testbin.WriteFile(e.t, "config.json", raw)
}

func (e *env) run(args ...string) testbin.Result {
	e.t.Helper()
	return testbin.Run(e.t, 2*time.Minute, e.vars, args...)
}

// catalogFile writes a configured catalog of the named streams.
func catalogFile(t *testing.T, mode string, names ...string) string {
	var cc protocol.ConfiguredCatalog
	for _, n := range names {
		cc.Streams = append(cc.Streams, protocol.ConfiguredStream{Stream: protocol.Stream{Name: n}, SyncMode: mode, DestinationSyncMode: "append"})
	}
	raw, _ := json.Marshal(cc)
	return testbin.WriteFile(t, "catalog.json", raw)
}

func stateOf(t *testing.T, st protocol.State) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(st.Stream.StreamState, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func requireExit(t *testing.T, res testbin.Result, code int) {
	t.Helper()
	if res.ExitCode != code {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", res.ExitCode, code, res.Stderr)
	}
}

func requireNoSecret(t *testing.T, res testbin.Result, secret string) {
	t.Helper()
	if slices.ContainsFunc([]string{string(res.Stdout), res.Stderr}, func(s string) bool { return strings.Contains(s, secret) }) {
		t.Fatalf("the secret %q appears in the output", secret)
	}
}

func writeFile(t *testing.T, name string, data []byte) string {
	return testbin.WriteFile(t, name, data)
}
