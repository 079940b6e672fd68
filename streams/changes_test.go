package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

// TestEventsSharingASecondAcrossReads: two changes in the same second, the
// second one recorded after a read already covered that second. The next
// read applies the second change and not the first again.
func TestEventsSharingASecondAcrossReads(t *testing.T) {
	second := time.Unix(1_800_000_000, 0)
	fake := fakestripe.New(fakestripe.WithClock(func() time.Time { return second }))
	defer fake.Close()
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCustomer: 20}
	fake.Seed(d)
	customers, _ := Lookup("customers")

	var st state.Stream
	read := func() []string {
		t.Helper()
		var out bytes.Buffer
		r := &Reader{
			Client:    stripeapi.New(stripeapi.Options{APIKey: fakestripe.DefaultKey, BaseURL: fake.URL()}),
			Out:       protocol.NewWriter(&out),
			StartDate: d.Start,
			// Mid-second: the read covers part of that second only.
			Now: func() time.Time { return second.Add(300 * time.Millisecond) },
		}
		if err := r.Read(context.Background(), []Job{{Stream: customers, Incremental: true, State: st}}); err != nil {
			t.Fatal(err)
		}
		r.Out.Flush()
		res := testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}
		states := res.States()
		set, err := state.Parse(mustJSON(t, []protocol.State{states[len(states)-1]}))
		if err != nil {
			t.Fatal(err)
		}
		st = set["customers"]
		return testbin.IDs(res.Records("customers"))
	}

	if n := len(read()); n != 20 {
		t.Fatalf("backfill read %d customers", n)
	}
	ids := fake.IDs(fakestripe.KindCustomer)
	fake.Update(fakestripe.KindCustomer, ids[0], time.Time{}, map[string]any{"description": "first"})
	if got := read(); !slices.Equal(got, ids[:1]) {
		t.Fatalf("first change: read %v, want %v", got, ids[:1])
	}
	fake.Update(fakestripe.KindCustomer, ids[1], time.Time{}, map[string]any{"description": "second, same second"})
	if got := read(); !slices.Equal(got, ids[1:2]) {
		t.Fatalf("second change in the same second: read %v, want only %v", got, ids[1:2])
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("nothing changed, read %v", got)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
