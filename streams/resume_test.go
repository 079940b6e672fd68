package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

// claims reports whether st promises that the object created at c has been
// emitted (a window continued after an object counts as unread whole).
func claims(st state.Stream, c int64) bool {
	if st.Created == nil {
		return false
	}
	if c < *st.Created {
		return true
	}
	if st.Backlog == nil || c >= st.Backlog.Upto {
		return false
	}
	for _, w := range st.Backlog.Windows {
		if w.Lo <= c && c < w.Hi {
			return false
		}
	}
	return true
}

// TestResumedBacklogKeepsItsGround resumes a backfill from a state with a
// backlog, in the second the state was saved (a platform retrying at once)
// and on a clock an hour behind the one that saved it (another machine).
// Every STATE of the resumed read is a valid state and promises at least
// what the saved one did, and the read lists only what the saved one left.
// (A read whose windows ran out once set its cursor to the highest window's
// end and dropped the backlog: it gave up the rest of the range, and the
// next read listed it all again.)
func TestResumedBacklogKeepsItsGround(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCharge: 2000}
	fake, client := seeded(t, d)
	created := map[string]int64{}
	for _, raw := range fake.Objects(fakestripe.KindCharge) {
		var o ref
		json.Unmarshal(raw, &o)
		created[o.ID] = o.Created
	}
	now := d.End.Add(time.Hour)
	until := now.Unix()
	lo, span := d.Start.Unix(), d.End.Unix()-d.Start.Unix()
	at := func(share float64) int64 { return lo + int64(share*float64(span)) }

	for _, tc := range []struct {
		name    string
		upto    int64
		windows []state.Window
	}{
		{name: "same second", upto: until, windows: []state.Window{{Lo: at(0.1), Hi: at(0.3)}, {Lo: at(0.4), Hi: at(0.6)}}},
		{name: "clock behind", upto: until + 3600, windows: []state.Window{{Lo: at(0.1), Hi: at(0.3)}, {Lo: at(0.5), Hi: at(0.7)}, {Lo: until + 60, Hi: until + 1800}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cursor := tc.windows[0].Lo
			saved := state.Stream{Version: state.Version, Created: &cursor,
				Events:  &state.Events{Since: until - 600},
				Backlog: &state.Backlog{Upto: tc.upto, Windows: tc.windows}}
			var out bytes.Buffer
			charges, _ := Lookup("charges")
			r := &Reader{
				Client:        client,
				Out:           protocol.NewWriter(&out),
				StartDate:     d.Start,
				Now:           func() time.Time { return now },
				WindowRecords: 100,
				MaxPages:      2, // windows wait their turn: many checkpoints
			}
			if err := r.Read(context.Background(), []Job{{Stream: charges, Incremental: true, State: saved}}); err != nil {
				t.Fatal(err)
			}
			r.Out.Flush()

			emitted := map[string]int{}
			backfilling, states := true, 0
			for _, m := range testbin.ParseMessages(t, out.Bytes()) {
				switch {
				case m.Type == protocol.TypeRecord && backfilling:
					emitted[testbin.IDs([]protocol.Record{*m.Record})[0]]++
				case m.Type == protocol.TypeState:
					raw, _ := json.Marshal(m.State)
					set, err := state.Parse(raw)
					if err != nil {
						t.Fatalf("a STATE the next read would refuse: %v\n%s", err, raw)
					}
					st := set["charges"]
					if st.Following() {
						backfilling = false
						continue
					}
					states++
					for id, c := range created {
						if claims(saved, c) && !claims(st, c) {
							t.Fatalf("STATE %d gives up %s (created %d), which the saved state had: %s", states, id, c, m.State.Stream.StreamState)
						}
					}
				}
			}
			// The last of them is the one the windows running out wrote.
			if states == 0 {
				t.Errorf("no STATE during the backfill")
			}
			for id, c := range created {
				want := 1
				if claims(saved, c) {
					want = 0
				}
				if emitted[id] != want {
					t.Fatalf("%s (created %d) emitted %d times, want %d", id, c, emitted[id], want)
				}
			}
		})
	}
}

// gate wraps a Lister: a request for a held range waits while the others
// are read, then stops the read (as SIGTERM would); hide drops objects not
// listable yet (Stripe lists an object a little after its created time).
type gate struct {
	Lister
	held func(lo, hi int64) bool
	hide func(created int64) bool
	stop context.CancelFunc
}

func (g *gate) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	lo, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
	hi, _ := strconv.ParseInt(q.Get("created[lt]"), 10, 64)
	if g.held != nil && g.held(lo, hi) {
		time.Sleep(300 * time.Millisecond)
		g.stop()
		return stripeapi.Page{}, ctx.Err()
	}
	page, err := g.Lister.ListPage(ctx, path, q)
	if g.hide != nil {
		page.Data = slices.DeleteFunc(page.Data, func(raw json.RawMessage) bool { r, _ := objectRef(raw); return g.hide(r.Created) })
	}
	return page, err
}

// read reads one stream incrementally from saved, with 8 pages in flight.
func read(t *testing.T, ctx context.Context, client Lister, stream string, start, now time.Time, lookback time.Duration, saved state.Stream) (testbin.Result, error) {
	st, _ := Lookup(stream)
	var out bytes.Buffer
	r := &Reader{Client: client, Out: protocol.NewWriter(&out), StartDate: start, Lookback: lookback, MaxPages: 8, Now: func() time.Time { return now }}
	err := r.Read(ctx, []Job{{Stream: st, Incremental: true, State: saved}})
	r.Out.Flush()
	return testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}, err
}

// TestLookbackKeepsTheBacklogsGround resumes a stream without events from a
// backlog with a lookback, and stops it once only the lookback is left to
// read. Its final STATE still promises what the saved one did. (Once, the
// cursor stayed below the lookback's end and the backlog was dropped: the
// STATE gave up everything above the saved cursor.)
func TestLookbackKeepsTheBacklogsGround(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindBalanceTransaction: 300}
	fake, client := seeded(t, d)
	day := int64(86400)
	c := d.Start.Unix() + 10*day
	saved := state.Stream{Created: &c, Backlog: &state.Backlog{Upto: d.End.Unix(), Windows: []state.Window{{Lo: c, Hi: c + day}}}}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	g := &gate{Lister: client, stop: stop, held: func(lo, hi int64) bool { return hi <= c }} // the lookback
	res, _ := read(t, ctx, g, "balance_transactions", d.Start, d.End.Add(time.Hour), 5*24*time.Hour, saved)
	final := finalStates(res)["balance_transactions"]
	for _, raw := range fake.Objects(fakestripe.KindBalanceTransaction) {
		if r, _ := objectRef(raw); claims(saved, r.Created) && !claims(final, r.Created) {
			t.Fatalf("final STATE %s gives up %s (created %d)", final.Marshal(), r.ID, r.Created)
		}
	}
}

// TestBacklogTopIsReadAgainForLateObjects: an object created 5 s before a
// read began is not listable yet during it, and the read is stopped with a
// backlog. The next read lists again the last seconds below the backlog's
// upto, as it does below a cursor, and emits it.
func TestBacklogTopIsReadAgainForLateObjects(t *testing.T) {
	d := fakestripe.DefaultDataset()
	fake, client := seeded(t, d)
	now := d.End.Add(time.Hour)
	late := fake.Create(fakestripe.KindBalanceTransaction, now.Add(-5*time.Second), nil)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	g := &gate{Lister: client, stop: stop, held: func(lo, hi int64) bool { return lo == d.Start.Unix() },
		hide: func(c int64) bool { return c >= now.Unix()-10 }}
	first, _ := read(t, ctx, g, "balance_transactions", d.Start, now, 0, state.Stream{})
	saved := finalStates(first)["balance_transactions"]
	second, _ := read(t, context.Background(), client, "balance_transactions", d.Start, now.Add(time.Hour), 0, saved)
	if !slices.Contains(testbin.IDs(append(first.Records("balance_transactions"), second.Records("balance_transactions")...)), late) {
		t.Fatalf("%s never emitted; the first read's STATE %s promised it", late, saved.Marshal())
	}
}

// TestStartDateBefore1970: a start_date before 1970 reads from 1970; a STATE
// of a read stopped at once is one the next read accepts (no negative
// cursor).
func TestStartDateBefore1970(t *testing.T) {
	_, client := seeded(t, fakestripe.DefaultDataset())
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	start := time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)
	g := &gate{Lister: client, stop: stop, held: func(lo, hi int64) bool { return lo == start.Unix() }}
	res, _ := read(t, ctx, g, "balance_transactions", start, fakestripe.DefaultEnd, 0, state.Stream{})
	for _, m := range res.States() {
		raw, _ := json.Marshal(m)
		if _, err := state.Parse(raw); err != nil {
			t.Fatalf("a STATE the next run refuses: %v", err)
		}
	}
}

// TestBacklogAfterDeletedObject resumes a window saved to continue after a
// customer that was deleted since. Stripe answers resource_missing to
// starting_after; the window is listed from its top again instead of
// failing on every run.
func TestBacklogAfterDeletedObject(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCustomer: 300}
	fake, client := seeded(t, d)
	x, _ := objectRef(fake.Objects(fakestripe.KindCustomer)[150])
	now := d.End.Add(time.Hour)
	c := d.Start.Unix()
	saved := state.Stream{Created: &c, Events: &state.Events{Since: now.Unix() - 600},
		Backlog: &state.Backlog{Upto: now.Unix(), Windows: []state.Window{{Lo: c, Hi: x.Created + 1, After: x.ID}}}}
	fake.Delete(fakestripe.KindCustomer, x.ID, now.Add(-time.Minute))
	var err error
	for range 3 { // the platform retries
		var res testbin.Result
		res, err = read(t, context.Background(), client, "customers", d.Start, now, 0, saved)
		saved = finalStates(res)["customers"]
	}
	if err != nil {
		t.Fatalf("third read: %v; state left: %s", err, saved.Marshal())
	}
}

// TestLateCheckoutSessionIsListedAgain: checkout sessions are born without
// an event, so a session listable only after the backfill's end would wait
// for its completion (up to a day) unless the next run lists the last
// seconds below the cursor again.
func TestLateCheckoutSessionIsListedAgain(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCheckoutSession: 20}
	fake, client := seeded(t, d)
	now := d.End.Add(time.Hour)
	late := fake.Create(fakestripe.KindCheckoutSession, now.Add(-5*time.Second), nil)
	g := &gate{Lister: client, hide: func(c int64) bool { return c >= now.Unix()-10 }}
	first, err := read(t, context.Background(), g, "checkout_sessions", d.Start, now, 0, state.Stream{})
	if err != nil {
		t.Fatal(err)
	}
	saved := finalStates(first)["checkout_sessions"]
	second, err := read(t, context.Background(), client, "checkout_sessions", d.Start, now.Add(time.Minute), 0, saved)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(testbin.IDs(first.Records("checkout_sessions")), late) {
		t.Fatalf("%s was hidden from the first read, yet emitted", late)
	}
	if !slices.Contains(testbin.IDs(second.Records("checkout_sessions")), late) {
		t.Fatalf("%s never emitted; the first read's STATE %s promised it", late, saved.Marshal())
	}
}

// TestRelistAroundBacklogWindows: the last 30 s below a backlog's upto are
// listed again around the windows there, not only above the highest one:
// an object listed late in a gap between two windows is emitted.
func TestRelistAroundBacklogWindows(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindBalanceTransaction: 50}
	fake, client := seeded(t, d)
	now := d.End.Add(time.Hour)
	upto := now.Unix() - 120
	late := fake.Create(fakestripe.KindBalanceTransaction, time.Unix(upto-25, 0), nil) // in the gap
	cursor := upto - 3600
	saved := state.Stream{Version: state.Version, Created: &cursor, Backlog: &state.Backlog{Upto: upto,
		Windows: []state.Window{{Lo: cursor, Hi: cursor + 60}, {Lo: upto - 20, Hi: upto - 10}}}}
	res, err := read(t, context.Background(), client, "balance_transactions", d.Start, now, 0, saved)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(testbin.IDs(res.Records("balance_transactions")), late) {
		t.Fatalf("%s, created in [upto-30, upto) between two backlog windows, was not listed again", late)
	}
}
