package acceptance

import (
	"encoding/json"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
)

// TestEstuaryAdapterCompatibility: Estuary Flow runs Airbyte sources
// through an adapter that passes state as the legacy object
// {"<stream>": <stream_state>} ({} on a first run), merges STREAM states
// into that object, and adds its own fields to the configured catalog.
func TestEstuaryAdapterCompatibility(t *testing.T) {
	t.Parallel()
	p, fake := fakePeer(t, fakestripe.DefaultDataset())
	cat := p.discover()
	incremental, streams := configuredCatalog(t, cat, incrementalOnly)

	t.Run("empty object state", func(t *testing.T) {
		t.Parallel()
		res := p.on(t).read(nil, incremental, []byte(`{}`))
		requireCompleteRead(t, res, streams)
		if got, want := len(res.Records("charges")), fake.Count(fakestripe.KindCharge); got != want || want == 0 {
			t.Fatalf("a first run with state {} read %d charges of %d", got, want)
		}
	})

	t.Run("legacy object state", func(t *testing.T) {
		t.Parallel()
		cursor := fakestripe.DefaultEnd.Add(-15 * 24 * time.Hour).Unix()
		legacy := map[string]any{}
		for _, s := range streams {
			legacy[s] = map[string]any{"created": cursor}
		}
		res := p.on(t).read(nil, incremental, mustJSON(t, legacy))
		requireCompleteRead(t, res, streams)
		for _, r := range res.Records("") {
			if c := cursorOf(t, streamOf(t, cat, r.Stream), r); c < cursor {
				t.Fatalf("record %s has cursor %d, before the legacy state's %d", keyOf(t, r), c, cursor)
			}
		}
		if got, all := len(res.Records("charges")), fake.Count(fakestripe.KindCharge); got == 0 || got >= all {
			t.Fatalf("read %d of %d charges from a state in the middle of the data", got, all)
		}
	})

	t.Run("merged state round trip", func(t *testing.T) {
		t.Parallel()
		p := p.on(t)
		first := p.read(nil, incremental, []byte(`{}`))
		requireCompleteRead(t, first, streams)
		if len(first.Records("")) == 0 {
			t.Fatal("the first read returned nothing")
		}
		// What the adapter keeps: each stream's latest stream_state, merged.
		merged := map[string]json.RawMessage{}
		for _, st := range first.States() {
			merged[st.Stream.StreamDescriptor.Name] = st.Stream.StreamState
		}
		second := p.read(nil, incremental, mustJSON(t, merged))
		requireCompleteRead(t, second, streams)
		if n := len(second.Records("")); n > 0 {
			t.Fatalf("the second read from the merged state returned %d records again (nothing changed): %s", n, firstLines(sortedKeys(keys(t, second)), 5))
		}
	})

	t.Run("catalog with estuary fields", func(t *testing.T) {
		t.Parallel()
		p := p.on(t)
		plain, all := configuredCatalog(t, cat, bestMode)
		configured := configuredStreams(cat, bestMode)
		for _, cs := range configured {
			cs["estuary.dev/range"] = map[string]any{"keyBegin": 0, "keyEnd": 4294967295}
			cs["estuary.dev/projections"] = map[string]string{"id": "/id", "_meta/uuid": "/_meta/uuid"}
		}
		estuary := mustJSON(t, map[string]any{
			"streams":           configured,
			"estuary.dev/tail":  false,
			"estuary.dev/range": map[string]string{"begin": "00000000", "end": "ffffffff"},
		})
		want := keys(t, p.read(nil, plain, nil))
		res := p.read(nil, estuary, nil)
		requireCompleteRead(t, res, all)
		got := keys(t, res)
		for _, s := range all {
			if len(res.Records(s)) == 0 {
				t.Errorf("stream %s: no records", s)
			}
		}
		var diff []string
		for k := range want {
			if _, ok := got[k]; !ok {
				diff = append(diff, "missing "+k.String())
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				diff = append(diff, "extra "+k.String())
			}
		}
		if len(diff) > 0 {
			t.Errorf("with Estuary's fields the read differs from the plain catalog's: %s", firstLines(diff, 5))
		}
	})
}
