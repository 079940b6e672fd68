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
