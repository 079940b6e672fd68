package acceptance

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/protocol"
)

func TestIncrementalTwoSequentialReads(t *testing.T) {
	t.Parallel()
	t.Run("no lookback", func(t *testing.T) {
		t.Parallel()
		twoSequentialReads(t, fakestripe.DefaultDataset(), 0)
	})
	t.Run("lookback window", func(t *testing.T) {
		t.Parallel()
		// Objects up to a minute ago, so that the window before the first
		// read's cursor holds some.
		d := fakestripe.DefaultDataset()
		d.End = time.Now().Add(-time.Minute).Truncate(time.Second)
		d.Start = d.End.Add(-30 * 24 * time.Hour)
		twoSequentialReads(t, d, 2)
	})
}

// twoSequentialReads reads the incremental streams, creates one object per
// stream, and reads again from the first read's final state: the second
// read returns the new objects, and a record of the first read again only
// when it lies in the lookback window.
func twoSequentialReads(t *testing.T, d fakestripe.Dataset, lookbackDays int) {
	p, fake := fakePeer(t, d)
	cat := p.discover()
	catalog, streams := configuredCatalog(t, cat, incrementalOnly)
	config := map[string]any{"lookback_window_days": lookbackDays}

	first := p.read(config, catalog, nil)
	requireCompleteRead(t, first, streams)
	firstKeys := keys(t, first)
	cursors := finalCursors(t, first)
	for _, s := range streams {
		if len(first.Records(s)) == 0 {
			t.Fatalf("stream %s: the first read returned nothing; the test would prove nothing", s)
		}
		if _, ok := cursors[s]; !ok {
			t.Fatalf("stream %s: the first read emitted no STATE", s)
		}
	}

	now := time.Now()
	created := map[string]string{}
	for _, s := range streams {
		if kinds, ok := childKindOf[s]; ok {
			// A new child of an existing parent; checkout sessions get
			// their line items when they are created, so a new one.
			parent := fake.IDs(kinds[1])[0]
			if kinds[1] == fakestripe.KindCheckoutSession {
				parent = fake.Create(kinds[1], now, nil)
			}
			created[s] = fake.AddChild(kinds[0], parent, now)
			continue
		}
		created[s] = fake.Create(kindOf[s], now, nil)
	}
	// The connector reads up to the start of its run, exclusive of that
	// second: let the wall clock pass the new objects' second.
	time.Sleep(time.Until(now.Truncate(time.Second).Add(1100 * time.Millisecond)))

	second := p.read(config, catalog, first.FinalState(t))
	requireCompleteRead(t, second, streams)
	secondKeys := keys(t, second)

	window := int64(lookbackDays) * 24 * 60 * 60
	repeated := 0
	var again, early []string
	for k, r := range secondKeys {
		cursor := cursorOf(t, streamOf(t, cat, k.stream), r)
		from := cursors[k.stream] - window
		_, seen := firstKeys[k]
		what := fmt.Sprintf("%s (cursor %d, state %d)", k, cursor, cursors[k.stream])
		switch {
		case seen && cursor < from:
			again = append(again, what)
		case cursor < from:
			early = append(early, what)
		case seen:
			repeated++
		}
	}
	if len(again) > 0 {
		sort.Strings(again)
		t.Errorf("%d records of the first read came back, though they lie before the state's cursor minus the lookback window (%d days): %s", len(again), lookbackDays, firstLines(again, 5))
	}
	if len(early) > 0 {
		sort.Strings(early)
		t.Errorf("%d records lie before the state's cursor minus the lookback window (%d days): %s", len(early), lookbackDays, firstLines(early, 5))
	}
	if lookbackDays > 0 && repeated == 0 {
		t.Errorf("no record of the lookback window was read again; the dataset should have some in it")
	}
	for s, id := range created {
		if _, ok := secondKeys[recordKey{s, id}]; !ok {
			t.Errorf("stream %s: the object %s created between the reads is missing from the second read", s, id)
		}
	}
	t.Logf("second read: %d records, %d of them already read (lookback %d days)", len(secondKeys), repeated, lookbackDays)
}

func TestIncrementalReadFromEveryCheckpoint(t *testing.T) {
	t.Parallel()
	// Charges only, enough for the reader's windows of about 2,000 objects
	// to checkpoint several times. They end shortly before the run, as in a
	// live account: the reader sizes windows by the density between the run's
	// start and the first page.
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	d := fakestripe.Dataset{
		Start:      end.Add(-30 * 24 * time.Hour),
		End:        end,
		Counts:     map[string]int{fakestripe.KindCharge: 8000},
		PerSecond:  3,
		SameSecond: 110,
		Seed:       7,
	}
	p, fake := fakePeer(t, d)
	cat := p.discover()
	catalog, streams := configuredCatalog(t, cat, func(s protocol.Stream) string {
		if s.Name == "charges" {
			return protocol.SyncModeIncremental
		}
		return ""
	})
	// A start_date just before the data spares reads of empty years.
	config := map[string]any{"start_date": d.Start.Add(-24 * time.Hour).UTC().Format(time.RFC3339)}
	full := p.read(config, catalog, nil)
	requireCompleteRead(t, full, streams)
	all := keys(t, full)
	if len(all) != fake.Count(fakestripe.KindCharge) {
		t.Fatalf("the full read returned %d charges of %d", len(all), fake.Count(fakestripe.KindCharge))
	}

	// The records each checkpoint covers: those emitted before it.
	type checkpoint struct {
		state  protocol.State
		before map[recordKey]bool
	}
	var checkpoints []checkpoint
	seen := map[recordKey]bool{}
	for _, m := range full.Messages {
		switch m.Type {
		case protocol.TypeRecord:
			seen[keyOf(t, *m.Record)] = true
		case protocol.TypeState:
			checkpoints = append(checkpoints, checkpoint{*m.State, maps.Clone(seen)})
		}
	}
	if len(checkpoints) < 3 {
		t.Fatalf("the full read of %d charges emitted %d STATEs; the test needs several checkpoints to mean anything", len(all), len(checkpoints))
	}

	for i, cp := range checkpoints {
		t.Run(fmt.Sprintf("checkpoint %d of %d", i+1, len(checkpoints)), func(t *testing.T) {
			t.Parallel()
			res := p.on(t).read(config, catalog, mustJSON(t, []protocol.State{cp.state}))
			requireCompleteRead(t, res, streams)
			after := keys(t, res)
			var lost []string
			for k := range all {
				if _, read := after[k]; !cp.before[k] && !read {
					lost = append(lost, k.String())
				}
			}
			if len(lost) > 0 {
				t.Errorf("resuming from %s (after %d records) loses %d records: %s", cp.state.Stream.StreamState, len(cp.before), len(lost), firstLines(lost, 5))
			}
		})
	}
}

func TestFutureState(t *testing.T) {
	t.Parallel()
	p, _ := fakePeer(t, fakestripe.DefaultDataset())
	cat := p.discover()
	catalog, streams := configuredCatalog(t, cat, bestMode)
	var states []protocol.State
	var incremental []string
	for _, s := range cat.Streams {
		if bestMode(s) != protocol.SyncModeIncremental {
			continue
		}
		incremental = append(incremental, s.Name)
		states = append(states, protocol.State{Type: protocol.StateTypeStream, Stream: &protocol.StreamState{
			StreamDescriptor: protocol.StreamDescriptor{Name: s.Name},
			StreamState:      json.RawMessage(`{"state_version":1,"created":9999999999}`),
		}})
	}
	if len(incremental) == 0 {
		t.Fatal("no incremental stream")
	}
	res := p.read(nil, catalog, mustJSON(t, states))
	requireCompleteRead(t, res, streams)
	for _, s := range incremental {
		if n := len(res.Records(s)); n > 0 {
			t.Errorf("stream %s: %d records despite a state in the far future", s, n)
		}
	}
	requireStreamStates(t, res, streams)
}
