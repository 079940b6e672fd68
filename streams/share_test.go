package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

// requestLog wraps a Lister and keeps every list request.
type requestLog struct {
	Lister
	mu    sync.Mutex
	lists []string
}

func (l *requestLog) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	l.mu.Lock()
	l.lists = append(l.lists, path+"?"+q.Encode())
	l.mu.Unlock()
	return l.Lister.ListPage(ctx, path, q)
}

// TestChildBackfillRidesOnParent: on a first sync of invoices and their
// lines, each page of invoices is listed once and serves both streams; each
// stream gets every object, and both end in the same created cursor.
func TestChildBackfillRidesOnParent(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindInvoice: 700}
	d.LinesPerInvoice = 2
	d.BigInvoiceLines = 150 // one invoice whose lines are not all embedded
	fake, client := seeded(t, d)
	log := &requestLog{Lister: client}
	invoices, _ := Lookup("invoices")
	lines, _ := Lookup("invoice_line_items")
	var out bytes.Buffer
	r := &Reader{Client: log, Out: protocol.NewWriter(&out), StartDate: d.Start,
		Now: func() time.Time { return d.End.Add(time.Minute) }}
	jobs := []Job{{Stream: lines, Incremental: true}, {Stream: invoices, Incremental: true}}
	if err := r.Read(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
	r.Out.Flush()
	res := testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}

	for stream, kind := range map[string]string{"invoices": fakestripe.KindInvoice, "invoice_line_items": fakestripe.KindInvoiceLineItem} {
		ids := testbin.IDs(res.Records(stream))
		slices.Sort(ids)
		if want := len(fake.Objects(kind)); len(ids) != want || len(slices.Compact(ids)) != want {
			t.Errorf("%s: %d records, want each of the fake's %d once", stream, len(res.Records(stream)), want)
		}
		if st := res.Statuses()[stream]; !slices.Equal(st, []string{protocol.StreamStarted, protocol.StreamRunning, protocol.StreamComplete}) {
			t.Errorf("%s: statuses %v", stream, st)
		}
	}
	var invoiceLists []string
	for _, l := range log.lists {
		if len(l) > len("/v1/invoices?") && l[:len("/v1/invoices?")] == "/v1/invoices?" {
			invoiceLists = append(invoiceLists, l)
		}
	}
	sorted := slices.Sorted(slices.Values(invoiceLists))
	if len(slices.Compact(sorted)) != len(invoiceLists) {
		t.Errorf("%d requests for pages of invoices, %d different: a page was listed for each stream", len(invoiceLists), len(slices.Compact(slices.Clone(sorted))))
	}
	final := map[string]state.Stream{}
	for _, s := range res.States() {
		var st state.Stream
		json.Unmarshal(s.Stream.StreamState, &st)
		final[s.Stream.StreamDescriptor.Name] = st
	}
	a, b := final["invoices"], final["invoice_line_items"]
	if a.Created == nil || b.Created == nil || *a.Created != *b.Created || !a.Following() || !b.Following() {
		t.Errorf("final states: invoices %s, invoice_line_items %s; want the same created cursor, both following", a.Marshal(), b.Marshal())
	}
}
