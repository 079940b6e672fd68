package streams

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/stripeapi"
)

// inFlight wraps a Lister and records the list requests in flight at once.
// The first hold requests are held until all of them have arrived (or 2 s
// passed), so that the requests a reader sends together are seen together
// however the goroutines are scheduled; later ones take delay.
type inFlight struct {
	Lister
	hold  int
	delay time.Duration

	mu      sync.Mutex
	now     int
	most    int
	total   int
	ranges  [][2]int64 // created ranges of the first round
	arrived chan struct{}
}

func (f *inFlight) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	f.mu.Lock()
	f.now++
	f.total++
	f.most = max(f.most, f.now)
	held := f.total <= f.hold
	if held {
		lo, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
		hi, _ := strconv.ParseInt(q.Get("created[lt]"), 10, 64)
		f.ranges = append(f.ranges, [2]int64{lo, hi})
		if f.total == f.hold {
			close(f.arrived)
		}
	}
	f.mu.Unlock()
	if held {
		select {
		case <-f.arrived:
		case <-time.After(2 * time.Second):
		}
	} else {
		time.Sleep(f.delay)
	}
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	return f.Lister.ListPage(ctx, path, q)
}

func readCharges(t *testing.T, d fakestripe.Dataset, client Lister, r *Reader) []protocol.Record {
	t.Helper()
	charges, _ := Lookup("charges")
	var out bytes.Buffer
	r.Client, r.Out = client, protocol.NewWriter(&out)
	r.Now = func() time.Time { return d.End.Add(time.Minute) }
	if err := r.Read(context.Background(), []Job{{Stream: charges, Incremental: true}}); err != nil {
		t.Fatal(err)
	}
	r.Out.Flush()
	res := testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}
	return res.Records("charges")
}

func requireEachOnce(t *testing.T, fake *fakestripe.Server, records []protocol.Record) {
	t.Helper()
	ids := testbin.IDs(records)
	slices.Sort(ids)
	if len(slices.Compact(ids)) != len(records) || len(records) != len(fake.Objects(fakestripe.KindCharge)) {
		t.Fatalf("%d records, %d distinct, the fake has %d charges", len(records), len(ids), len(fake.Objects(fakestripe.KindCharge)))
	}
}

// TestWideRangeOpensInParallel: a stream's backfill over a year starts with
// a window per page slot in flight (it is the only stream), not one request
// whose answer must come back before the range is split; the windows cover
// the range exactly.
func TestWideRangeOpensInParallel(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Start = d.End.Add(-365 * 24 * time.Hour)
	d.Counts = map[string]int{fakestripe.KindCharge: 500}
	fake, client := seeded(t, d)
	const slots = 10
	r := &Reader{StartDate: d.Start, MaxPages: slots}
	spy := &inFlight{Lister: client, hold: slots, arrived: make(chan struct{})}
	requireEachOnce(t, fake, readCharges(t, d, spy, r))

	if len(spy.ranges) < slots {
		t.Fatalf("first requests %v: want %d windows in flight at once", spy.ranges, slots)
	}
	first := slices.Clone(spy.ranges[:slots])
	slices.SortFunc(first, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	lo, hi := d.Start.Unix(), d.End.Add(time.Minute).Unix()
	for i, w := range first {
		if (i == 0 && w[0] != lo) || (i > 0 && w[0] != first[i-1][1]) || w[1] <= w[0] {
			t.Fatalf("first windows %v do not tile [%d, %d)", first, lo, hi)
		}
	}
	if first[slots-1][1] != hi {
		t.Fatalf("first windows %v end at %d, want %d", first, first[slots-1][1], hi)
	}
}

// TestIdleSlotsSplitAWindow: a window of about ten pages read while page
// slots are free is split for them instead of paged through alone; with no
// slot free it is paged through, with no more requests than pages.
func TestIdleSlotsSplitAWindow(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Start = d.End.Add(-12 * time.Hour) // narrower than two days: one window
	d.Counts = map[string]int{fakestripe.KindCharge: 1000}
	fake, client := seeded(t, d)

	spy := &inFlight{Lister: client, delay: 100 * time.Millisecond}
	requireEachOnce(t, fake, readCharges(t, d, spy, &Reader{StartDate: d.Start}))
	if spy.most < 5 {
		t.Errorf("with free slots: at most %d requests in flight, want the window split over 5 or more", spy.most)
	}

	spy = &inFlight{Lister: client, delay: time.Millisecond}
	requireEachOnce(t, fake, readCharges(t, d, spy, &Reader{StartDate: d.Start, MaxPages: 1}))
	if spy.most != 1 || spy.total > 11 {
		t.Errorf("with one slot: %d in flight, %d requests; want 1 and at most 11 for 1,000 charges", spy.most, spy.total)
	}
}

// TestChildrenOfAPageSideBySide: the bank accounts of a page of 100
// customers are listed side by side on the free page slots, never on more
// than there are; each is emitted once.
func TestChildrenOfAPageSideBySide(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Start = d.End.Add(-12 * time.Hour) // one window, one page of parents
	d.Counts = map[string]int{fakestripe.KindCustomer: 100}
	d.BankAccountsPerCustomer, d.BalanceTransactionsPerCustomer, d.BigCustomerBalanceTransactions = 1, 0, 0
	fake, client := seeded(t, d)
	spy := &inFlight{Lister: client, delay: 20 * time.Millisecond}
	accounts, _ := Lookup("bank_accounts")
	var out bytes.Buffer
	r := &Reader{Client: spy, Out: protocol.NewWriter(&out), StartDate: d.Start, MaxPages: 8,
		Now: func() time.Time { return d.End.Add(time.Minute) }}
	if err := r.Read(context.Background(), []Job{{Stream: accounts, Incremental: true}}); err != nil {
		t.Fatal(err)
	}
	r.Out.Flush()
	if spy.most < 6 || spy.most > 8 {
		t.Errorf("%d requests in flight at most, want 6 to 8 (the page slots)", spy.most)
	}
	got := testbin.IDs(testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}.Records("bank_accounts"))
	slices.Sort(got)
	want := fake.IDs(fakestripe.KindBankAccount)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%d bank accounts emitted, the fake holds %d", len(got), len(want))
	}
}

// failingChildren wraps a Lister: lists of bank accounts fail with a 400
// from the nth on; every request takes delay.
type failingChildren struct {
	Lister
	from  int64
	delay time.Duration
	lists atomic.Int64
}

func (f *failingChildren) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	time.Sleep(f.delay)
	if strings.HasSuffix(path, "/bank_accounts") && f.lists.Add(1) >= f.from {
		return stripeapi.Page{}, &stripeapi.APIError{Status: 400, Message: "bank accounts cannot be listed"}
	}
	return f.Lister.ListPage(ctx, path, q)
}

// TestDroppedRiderWritesNoMore: bank accounts ride on customers and their
// lists start failing while many are in flight. The stream ends INCOMPLETE
// and no record of it follows that; customers complete in full.
func TestDroppedRiderWritesNoMore(t *testing.T) {
	d, fake, client := customersWithAccounts(t, 1000)
	res, err := readCustomersAndAccounts(t, d, &Reader{Client: &failingChildren{Lister: client, from: 60, delay: 2 * time.Millisecond}, MaxPages: 16})
	if !errors.Is(err, ErrStreamsFailed) {
		t.Fatalf("Read returned %v, want ErrStreamsFailed", err)
	}
	ended := false
	for _, m := range res.Messages {
		if m.Type == protocol.TypeTrace && m.Trace.StreamStatus != nil && m.Trace.StreamStatus.StreamDescriptor.Name == "bank_accounts" &&
			m.Trace.StreamStatus.Status == protocol.StreamIncomplete {
			ended = true
		}
		if ended && m.Type == protocol.TypeRecord && m.Record.Stream == "bank_accounts" {
			t.Fatalf("a bank_accounts record follows the stream's INCOMPLETE")
		}
	}
	if !ended {
		t.Fatalf("bank_accounts statuses %v, want INCOMPLETE", res.Statuses()["bank_accounts"])
	}
	if st := res.Statuses()["customers"]; st[len(st)-1] != protocol.StreamComplete {
		t.Fatalf("customers statuses %v", st)
	}
	if got := len(res.Records("customers")); got != len(fake.IDs(fakestripe.KindCustomer)) {
		t.Fatalf("%d customers emitted, the fake holds %d", got, len(fake.IDs(fakestripe.KindCustomer)))
	}
}

// TestCheckpointDoesNotWaitForAPageBeingEmitted: while the newest window's
// page is still being emitted (its children take long), the older windows
// finish and the cursor moves past them at once. (A lock that made a
// checkpoint wait for every page being emitted stalled the reads behind it
// for seconds at a time when pages carry children.)
func TestCheckpointDoesNotWaitForAPageBeingEmitted(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCharge: 400}
	fake, client := seeded(t, d)
	var newest ref
	for _, raw := range fake.Objects(fakestripe.KindCharge) {
		if r, _ := objectRef(raw); r.Created > newest.Created {
			newest = r
		}
	}
	p := &pager{client: client, windowRecords: defaultWindowRecords, workers: 4, slots: make(chan struct{}, 4)}
	lo, hi := d.Start.Unix(), newest.Created+1
	queue := splitEven(lo, hi, 4)
	release := make(chan struct{})
	moved := make(chan int64, 16)
	emit := func(raw []byte) error {
		if r, _ := objectRef(raw); r.ID == newest.ID {
			<-release // the newest window's page is held mid-emission
		}
		return nil
	}
	progress := func(c int64, _ []window) error {
		moved <- c
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.readWindows(context.Background(), "/v1/charges", nil, queue, hi, emit, progress)
		done <- err
	}()
	want := queue[len(queue)-1].lo // the older windows done
	deadline := time.After(5 * time.Second)
	for reached := false; !reached; {
		select {
		case c := <-moved:
			reached = c >= want
		case <-deadline:
			close(release)
			t.Fatalf("the cursor did not reach %d while the newest window's page was being emitted", want)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
