package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/state"
)

// TestCheckpointInvariant reads a dense stream in many small windows and
// checks the promise every STATE makes: each object created before the
// state's cursor has been emitted before that STATE.
func TestCheckpointInvariant(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCharge: 3000}
	d.SameSecond = 250 // more than two pages in one second
	fake, client := seeded(t, d)

	var out bytes.Buffer
	charges, _ := Lookup("charges")
	r := &Reader{
		Client:        client,
		Out:           protocol.NewWriter(&out),
		StartDate:     d.Start,
		Now:           func() time.Time { return d.End.Add(time.Hour) },
		WindowRecords: 300,
		// 2 pages in flight: windows wait their turn, so the cursor moves
		// many times (with every page in flight at once it could move once).
		MaxPages: 2,
	}
	if err := r.Read(context.Background(), []Job{{Stream: charges, Incremental: true}}); err != nil {
		t.Fatal(err)
	}
	r.Out.Flush()

	created := map[string]int64{}
	for _, raw := range fake.Objects(fakestripe.KindCharge) {
		var o ref
		json.Unmarshal(raw, &o)
		created[o.ID] = o.Created
	}
	emitted := map[string]bool{}
	states, lastCursor := 0, int64(0)
	for _, m := range testbin.ParseMessages(t, out.Bytes()) {
		switch m.Type {
		case protocol.TypeRecord:
			emitted[testbin.IDs([]protocol.Record{*m.Record})[0]] = true
		case protocol.TypeState:
			states++
			var st state.Stream
			json.Unmarshal(m.State.Stream.StreamState, &st)
			if st.Created == nil || *st.Created < lastCursor {
				t.Fatalf("state %d: cursor %v moved back from %d", states, st.Created, lastCursor)
			}
			if *st.Created == lastCursor {
				continue // the events phase checkpoints with the same created cursor
			}
			lastCursor = *st.Created
			for id, c := range created {
				if c < lastCursor && !emitted[id] {
					t.Fatalf("state with cursor %d emitted before charge %s (created %d)", lastCursor, id, c)
				}
			}
		}
	}
	if len(emitted) != len(created) {
		t.Errorf("emitted %d charges, the fake has %d", len(emitted), len(created))
	}
	if states < 5 {
		t.Errorf("want a checkpoint every ~300 charges, got %d states for %d charges", states, len(created))
	}
}

// TestDormantAccountCheckpoints: an account whose last object is old still
// checkpoints every few thousand objects during its backfill.
func TestDormantAccountCheckpoints(t *testing.T) {
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCharge: 3000}
	_, client := seeded(t, d)
	var out bytes.Buffer
	charges, _ := Lookup("charges")
	r := &Reader{
		Client:        client,
		Out:           protocol.NewWriter(&out),
		StartDate:     d.Start.Add(-365 * 24 * time.Hour),
		Now:           func() time.Time { return d.End.Add(2 * 365 * 24 * time.Hour) }, // two quiet years
		WindowRecords: 500,
		MaxPages:      2, // as in TestCheckpointInvariant
	}
	if err := r.Read(context.Background(), []Job{{Stream: charges, Incremental: true}}); err != nil {
		t.Fatal(err)
	}
	r.Out.Flush()
	states := 0
	for _, m := range testbin.ParseMessages(t, out.Bytes()) {
		if m.Type == protocol.TypeState && m.State.SourceStats.RecordCount > 0 {
			states++
		}
	}
	if states < 4 {
		t.Fatalf("3000 charges in windows of ~500 gave %d checkpoints with records", states)
	}
}
