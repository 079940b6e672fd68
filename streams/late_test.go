package streams

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/stripeapi"
)

// TestLateBackfillMissesNothing: a stream whose backfill starts late (it
// waited for its turn) reads objects created before the run's start and
// follows events from that start, so an object created in between is read.
func TestLateBackfillMissesNothing(t *testing.T) {
	base := fakestripe.DefaultEnd.Add(time.Hour)
	var mu sync.Mutex
	n := 0
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return base.Add(time.Duration(n-1) * 10 * time.Minute)
	}
	fake := fakestripe.New(fakestripe.WithClock(func() time.Time { return base.Add(time.Hour) }))
	defer fake.Close()
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCustomer: 5}
	fake.Seed(d)
	// created after the run started, before the stream's backfill began
	id := fake.Create(fakestripe.KindCustomer, base.Add(5*time.Minute), nil)

	var out bytes.Buffer
	customers, _ := Lookup("customers")
	r := &Reader{Client: stripeapi.New(stripeapi.Options{APIKey: fakestripe.DefaultKey, BaseURL: fake.URL()}),
		Out: protocol.NewWriter(&out), StartDate: d.Start, Now: clock}
	if err := r.Read(context.Background(), []Job{{Stream: customers, Incremental: true}}); err != nil {
		t.Fatal(err)
	}
	r.Out.Flush()
	res := testbin.Result{Messages: testbin.ParseMessages(t, out.Bytes())}
	if !slices.Contains(testbin.IDs(res.Records("customers")), id) {
		t.Fatalf("customer %s created at run start+5m never emitted", id)
	}
}
