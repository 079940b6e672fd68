package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/jsonscan"
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
	if n, distinct := invoicePages(log); n != distinct {
		t.Errorf("%d requests for pages of invoices, %d different: a page was listed for each stream", n, distinct)
	}
	final := finalStates(res)
	a, b := final["invoices"], final["invoice_line_items"]
	if a.Created == nil || b.Created == nil || *a.Created != *b.Created || !a.Following() || !b.Following() {
		t.Errorf("final states: invoices %s, invoice_line_items %s; want the same created cursor, both following", a.Marshal(), b.Marshal())
	}
}

// childTrouble wraps a Lister: lists of invoice lines fail with a 400 (a
// child endpoint that will not work), or the read is stopped at the nth
// request. Parent pages take pageDelay.
type childTrouble struct {
	Lister
	failLines bool
	stopAt    int64
	stop      context.CancelFunc
	pageDelay time.Duration

	requests, lineLists atomic.Int64
}

func (c *childTrouble) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	if c.requests.Add(1) == c.stopAt {
		c.stop()
	}
	if strings.HasSuffix(path, "/lines") {
		c.lineLists.Add(1)
		if c.failLines {
			return stripeapi.Page{}, &stripeapi.APIError{Status: 400, Message: "lines cannot be listed"}
		}
	} else {
		time.Sleep(c.pageDelay)
	}
	return c.Lister.ListPage(ctx, path, q)
}

func readInvoicesAndLines(ctx context.Context, t *testing.T, d fakestripe.Dataset, client Lister, states map[string]state.Stream) (testbin.Result, error) {
	t.Helper()
	invoices, _ := Lookup("invoices")
	lines, _ := Lookup("invoice_line_items")
	var out bytes.Buffer
	r := &Reader{Client: client, Out: protocol.NewWriter(&out), StartDate: d.Start, MaxPages: 4,
		Now: func() time.Time { return d.End.Add(time.Minute) }}
	err := r.Read(ctx, []Job{
		{Stream: invoices, Incremental: true, State: states["invoices"]},
		{Stream: lines, Incremental: true, State: states["invoice_line_items"]},
	})
	r.Out.Flush()
	return testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}, err
}

func finalStates(res testbin.Result) map[string]state.Stream {
	final := map[string]state.Stream{}
	for _, s := range res.States() {
		var st state.Stream
		json.Unmarshal(s.Stream.StreamState, &st)
		final[s.Stream.StreamDescriptor.Name] = st
	}
	return final
}

// TestFailingRiderIsReportedAtOnce: a child stream that fails while riding
// is reported failed then, not when its parent's backfill ends: stopping
// the read before that does not hide its error.
func TestFailingRiderIsReportedAtOnce(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindInvoice: 2000}
	d.LinesPerInvoice = 2
	d.BigInvoiceLines = 150 // its lines are listed on their own: they fail
	_, client := seeded(t, d)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	trouble := &childTrouble{Lister: client, failLines: true, pageDelay: 20 * time.Millisecond}
	trouble.stopAt = 1 << 62
	go func() { // the user stops the read soon after the lines fail
		for trouble.lineLists.Load() == 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		stop()
	}()
	res, err := readInvoicesAndLines(ctx, t, d, trouble, nil)
	if !errors.Is(err, ErrStreamsFailed) {
		t.Errorf("Read returned %v, want ErrStreamsFailed", err)
	}
	errs := res.Errors()
	if len(errs) != 1 || errs[0].StreamDescriptor == nil || errs[0].StreamDescriptor.Name != "invoice_line_items" {
		t.Fatalf("errors %+v: want the failure of invoice_line_items", errs)
	}
	if st := res.Statuses()["invoice_line_items"]; st[len(st)-1] != protocol.StreamIncomplete {
		t.Fatalf("invoice_line_items statuses %v", st)
	}
}

// TestStoppedCrewKeepsOneCheckpoint: a read stopped while the children of a
// page are being fetched leaves the parent and the child at the same
// checkpoint, so that the next read has them ride together again, and
// together the two reads get every object.
func TestStoppedCrewKeepsOneCheckpoint(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindInvoice: 600}
	d.LinesPerInvoice = 12 // more than an invoice embeds: every invoice's lines are listed
	fake, client := seeded(t, d)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	trouble := &childTrouble{Lister: client, stopAt: 40, stop: stop}
	first, _ := readInvoicesAndLines(ctx, t, d, trouble, nil)
	if trouble.lineLists.Load() == 0 {
		t.Fatal("no invoice's lines were listed: the read was not stopped amid children")
	}
	states := finalStates(first)
	a, b := states["invoices"], states["invoice_line_items"]
	if string(a.Marshal()) != string(b.Marshal()) {
		t.Fatalf("stopped read left invoices at %s and invoice_line_items at %s: want one checkpoint", a.Marshal(), b.Marshal())
	}

	log := &requestLog{Lister: client}
	second, err := readInvoicesAndLines(context.Background(), t, d, log, states)
	if err != nil {
		t.Fatal(err)
	}
	for stream, kind := range map[string]string{"invoices": fakestripe.KindInvoice, "invoice_line_items": fakestripe.KindInvoiceLineItem} {
		got := map[string]bool{}
		for _, id := range testbin.IDs(append(first.Records(stream), second.Records(stream)...)) {
			got[id] = true
		}
		if want := len(fake.Objects(kind)); len(got) != want {
			t.Errorf("%s: the two reads got %d of %d objects", stream, len(got), want)
		}
	}
	if n, distinct := invoicePages(log); n != distinct {
		t.Fatalf("the second read made %d requests for pages of invoices, %d different: the streams did not ride together", n, distinct)
	}
}

// invoicePages counts the requests for pages of invoices, and the different
// ones among them.
func invoicePages(log *requestLog) (n, distinct int) {
	seen := map[string]bool{}
	for _, l := range log.lists {
		if strings.HasPrefix(l, "/v1/invoices?") {
			n++
			seen[l] = true
		}
	}
	return n, len(seen)
}

// slowChildren delays each bank account list by a pseudo-random time.
type slowChildren struct {
	Lister
	n atomic.Int64
}

func (s *slowChildren) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	if strings.HasSuffix(path, "/bank_accounts") {
		time.Sleep(time.Duration(s.n.Add(7)%5) * time.Millisecond)
	}
	return s.Lister.ListPage(ctx, path, q)
}

// TestRiderStatesPromiseOnlyEmitted: customers with bank accounts riding,
// children fetched side by side: every STATE of either stream promises only
// parents whose records (and children) were written before it.
func TestRiderStatesPromiseOnlyEmitted(t *testing.T) {
	d, fake, client := customersWithAccounts(t, 1500)
	res, err := readCustomersAndAccounts(t, d, &Reader{Client: &slowChildren{Lister: client}, MaxPages: 6, WindowRecords: 100})
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]int64{}
	for _, raw := range fake.Objects(fakestripe.KindCustomer) {
		o, _ := objectRef(raw)
		created[o.ID] = o.Created
	}
	seen := map[string]map[string]bool{"customers": {}, "bank_accounts": {}} // parent ids emitted
	n := 0
	for _, m := range res.Messages {
		switch m.Type {
		case protocol.TypeRecord:
			id := jsonscan.String(m.Record.Data, "id")
			if m.Record.Stream == "bank_accounts" {
				id = jsonscan.String(m.Record.Data, "customer")
			}
			seen[m.Record.Stream][id] = true
		case protocol.TypeState:
			n++
			var st state.Stream
			json.Unmarshal(m.State.Stream.StreamState, &st)
			name := m.State.Stream.StreamDescriptor.Name
			for id, c := range created {
				if claims(st, c) && !seen[name][id] {
					t.Fatalf("STATE %d of %s %s promises customer %s (created %d), not emitted before it", n, name, m.State.Stream.StreamState, id, c)
				}
			}
		}
	}
	if n < 3 {
		t.Errorf("%d STATEs: want several checkpoints to check", n)
	}
}

// customersWithAccounts seeds a fake with n customers of one bank account
// each.
func customersWithAccounts(t *testing.T, n int) (fakestripe.Dataset, *fakestripe.Server, Lister) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCustomer: n}
	d.BankAccountsPerCustomer, d.BalanceTransactionsPerCustomer, d.BigCustomerBalanceTransactions = 1, 0, 0
	fake, client := seeded(t, d)
	return d, fake, client
}

// readCustomersAndAccounts reads customers with bank accounts riding on
// them, a first sync of d with r's client and limits.
func readCustomersAndAccounts(t *testing.T, d fakestripe.Dataset, r *Reader) (testbin.Result, error) {
	t.Helper()
	customers, _ := Lookup("customers")
	accounts, _ := Lookup("bank_accounts")
	var out bytes.Buffer
	r.Out, r.StartDate = protocol.NewWriter(&out), d.Start
	r.Now = func() time.Time { return d.End.Add(time.Minute) }
	err := r.Read(context.Background(), []Job{{Stream: customers, Incremental: true}, {Stream: accounts, Incremental: true}})
	r.Out.Flush()
	return testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}, err
}
