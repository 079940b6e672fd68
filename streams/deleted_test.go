package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

// deleting wraps a Lister: once it has served a page of path that has
// more, it deletes that page's last n objects from the fake, the object
// the next page is to start after first, as a user deleting records while
// a sync pages through them.
type deleting struct {
	Lister
	fake       *fakestripe.Server
	kind, path string
	n          int

	once    sync.Once
	deleted []string
	second  int64 // when the first deleted object was created
}

func (d *deleting) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	page, err := d.Lister.ListPage(ctx, path, q)
	if err == nil && page.HasMore && strings.HasPrefix(path, d.path) {
		d.once.Do(func() {
			for i := len(page.Data) - 1; i >= max(0, len(page.Data)-d.n); i-- {
				r, _ := objectRef(page.Data[i])
				d.fake.Delete(d.kind, r.ID, time.Time{})
				if len(d.deleted) == 0 {
					d.second = r.Created
				}
				d.deleted = append(d.deleted, r.ID)
			}
		})
	}
	return page, err
}

// countIDs counts the records of stream emitted before its backfill ended
// (a STATE that follows events).
func countIDs(t *testing.T, out []byte, stream string) map[string]int {
	n := map[string]int{}
	for _, m := range testbin.ParseMessages(t, out) {
		if m.Type == protocol.TypeState && m.State.Stream.StreamDescriptor.Name == stream {
			var st state.Stream
			if json.Unmarshal(m.State.Stream.StreamState, &st) == nil && st.Following() {
				break
			}
		}
		if m.Type == protocol.TypeRecord && m.Record.Stream == stream {
			n[testbin.IDs([]protocol.Record{*m.Record})[0]]++
		}
	}
	return n
}

// TestChildListAnchorDeleted deletes bank accounts of a customer while its
// list of 250 is paged through: the object the next page starts after,
// three of them, or the whole page. Stripe then answers resource_missing to
// starting_after; the read starts after the object before it instead (or
// from the top when the page is gone), and ends with every bank account
// left, each once (twice at most when the whole page was deleted).
func TestChildListAnchorDeleted(t *testing.T) {
	for _, n := range []int{1, 3, 100} {
		d := fakestripe.DefaultDataset()
		d.Counts = map[string]int{fakestripe.KindCustomer: 1}
		d.BankAccountsPerCustomer, d.BalanceTransactionsPerCustomer, d.BigCustomerBalanceTransactions = 0, 0, 0
		fake, client := seeded(t, d)
		customer := fake.IDs(fakestripe.KindCustomer)[0]
		for range 250 {
			fake.AddChild(fakestripe.KindBankAccount, customer, time.Time{})
		}
		lister := &deleting{Lister: client, fake: fake, kind: fakestripe.KindBankAccount, path: "/v1/customers/", n: n}
		var out bytes.Buffer
		accounts, _ := Lookup("bank_accounts")
		r := &Reader{Client: lister, Out: protocol.NewWriter(&out), StartDate: d.Start, Now: func() time.Time { return d.End.Add(time.Hour) }}
		if err := r.Read(context.Background(), []Job{{Stream: accounts}}); err != nil {
			t.Fatalf("%d deleted: %v", n, err)
		}
		r.Out.Flush()
		got := countIDs(t, out.Bytes(), "bank_accounts")
		left := fake.ChildIDs(fakestripe.KindBankAccount, customer)
		if len(left) != 250-n {
			t.Fatalf("%d deleted: the fake holds %d bank accounts", n, len(left))
		}
		most := 1
		if n == 100 {
			most = 2
		}
		for _, id := range left {
			if got[id] < 1 || got[id] > most {
				t.Fatalf("%d deleted: bank account %s emitted %d times", n, id, got[id])
			}
		}
	}
}

// TestWindowAnchorDeleted deletes the customer a window's next page starts
// after, in a second holding many customers: the window is listed from its
// top again and the customers of that second the last page emitted are
// dropped, so every customer left is emitted once.
func TestWindowAnchorDeleted(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCustomer: 300}
	d.BankAccountsPerCustomer, d.BalanceTransactionsPerCustomer, d.BigCustomerBalanceTransactions = 0, 0, 0
	d.SameSecond = 150 // the middle half: the first page ends inside it
	fake, client := seeded(t, d)
	lister := &deleting{Lister: client, fake: fake, kind: fakestripe.KindCustomer, path: "/v1/customers", n: 1}
	var out bytes.Buffer
	customers, _ := Lookup("customers")
	r := &Reader{Client: lister, Out: protocol.NewWriter(&out), StartDate: d.Start, Now: func() time.Time { return d.End.Add(time.Hour) }, MaxPages: 1}
	if err := r.Read(context.Background(), []Job{{Stream: customers, Incremental: true}}); err != nil {
		t.Fatal(err)
	}
	r.Out.Flush()
	if len(lister.deleted) != 1 {
		t.Fatalf("deleted %v, want one customer", lister.deleted)
	}
	sharing := 0
	for _, raw := range fake.Objects(fakestripe.KindCustomer) {
		if r, _ := objectRef(raw); r.Created == lister.second && r.ID != lister.deleted[0] {
			sharing++
		}
	}
	if sharing < 100 {
		t.Fatalf("the deleted customer shares its second with %d others, want the first page to end inside a dense second", sharing)
	}
	got := countIDs(t, out.Bytes(), "customers")
	for _, id := range fake.IDs(fakestripe.KindCustomer) {
		if id != lister.deleted[0] && got[id] != 1 {
			t.Fatalf("customer %s emitted %d times during the backfill", id, got[id])
		}
	}
}
