package acceptance

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// requireRecordsMatchCatalog: every configured stream yields records, each
// record belongs to a configured stream, matches its stream's schema,
// declares no top-level field the schema lacks, and has every primary-key
// field, non-null.
func requireRecordsMatchCatalog(t *testing.T, res testbin.Result, cat *protocol.Catalog, streams []string) {
	t.Helper()
	validator := testbin.NewValidator(t, cat)
	configured := map[string]protocol.Stream{}
	declared := map[string]map[string]any{}
	for _, name := range streams {
		s := streamOf(t, cat, name)
		configured[name] = s
		var schema struct {
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(s.JSONSchema, &schema); err != nil {
			t.Fatal(err)
		}
		declared[name] = schema.Properties
	}
	extra := map[string]bool{}
	count := map[string]int{}
	invalid := 0
	for _, r := range res.Records("") {
		s, ok := configured[r.Stream]
		if !ok {
			t.Fatalf("a record of stream %q, which is not in the configured catalog", r.Stream)
		}
		count[r.Stream]++
		if err := validator.Validate(r); err != nil {
			if invalid++; invalid <= 20 {
				t.Error(err)
			}
		}
		obj := recordObject(t, r)
		// CAT's fail_on_extra_columns: every top-level field is declared.
		for field := range obj {
			if _, ok := declared[r.Stream][field]; !ok && !extra[r.Stream+"."+field] {
				extra[r.Stream+"."+field] = true
				t.Errorf("stream %s: record %v has field %q, which the schema does not declare", r.Stream, obj["id"], field)
			}
		}
		for _, path := range s.SourceDefinedPrimaryKey {
			if v, ok := lookupPath(obj, path); !ok || v == nil {
				t.Errorf("stream %s: primary key %v is missing or null: %.200s", r.Stream, path, r.Data)
			}
		}
	}
	if invalid > 20 {
		t.Errorf("... %d records in all do not match their schema", invalid)
	}
	for _, name := range streams {
		if count[name] == 0 {
			t.Errorf("stream %s yielded no records", name)
		}
	}
}

// requireStreamStates: at least one STATE per stream, each of type STREAM
// (never LEGACY or GLOBAL) with sourceStats.recordCount, the number of the
// stream's records since its previous STATE.
func requireStreamStates(t *testing.T, res testbin.Result, streams []string) {
	t.Helper()
	per := map[string]int{}
	// Records of each stream since its previous STATE, in output order.
	since := map[string]int{}
	var counts []int
	for _, m := range res.Messages {
		switch m.Type {
		case protocol.TypeRecord:
			since[m.Record.Stream]++
		case protocol.TypeState:
			n := -1
			if m.State.Stream != nil {
				name := m.State.Stream.StreamDescriptor.Name
				n, since[name] = since[name], 0
			}
			counts = append(counts, n)
		}
	}
	for i, st := range rawStates(t, res) {
		raw, _ := json.Marshal(st)
		if st["type"] != protocol.StateTypeStream {
			t.Fatalf("STATE %d has type %v, want STREAM (LEGACY and GLOBAL are not allowed): %s", i, st["type"], raw)
		}
		if st["data"] != nil || st["global"] != nil {
			t.Fatalf("STATE %d carries legacy data or a global state: %s", i, raw)
		}
		stream, _ := st["stream"].(map[string]any)
		desc, _ := stream["stream_descriptor"].(map[string]any)
		name, _ := desc["name"].(string)
		if name == "" || stream["stream_state"] == nil {
			t.Fatalf("STATE %d has no stream descriptor or stream_state: %s", i, raw)
		}
		stats, _ := st["sourceStats"].(map[string]any)
		if n, ok := stats["recordCount"].(float64); !ok {
			t.Errorf("stream %s: STATE %d has no sourceStats.recordCount: %s", name, i, raw)
		} else if int(n) != counts[i] {
			t.Errorf("stream %s: STATE %d counts %v records, but %d were emitted since the stream's previous STATE", name, i, n, counts[i])
		}
		per[name]++
	}
	for _, name := range streams {
		if per[name] == 0 {
			t.Errorf("stream %s emitted no STATE", name)
		}
	}
}

func TestBasicRead(t *testing.T) {
	t.Parallel()
	p, _ := fakePeer(t, fakestripe.DefaultDataset())
	cat := p.discover()
	catalog, streams := configuredCatalog(t, cat, bestMode)
	res := p.read(nil, catalog, nil)
	requireCompleteRead(t, res, streams)
	requireRecordsMatchCatalog(t, res, cat, streams)
	requireStreamStates(t, res, streams)
	requireNoSecret(t, res, p.key)
}

// TestBasicReadAgainstStripeMock reads the whole discovered catalog from
// stripe-mock, which answers 400 to any parameter Stripe would reject and
// serves objects generated from Stripe's own OpenAPI fixtures.
func TestBasicReadAgainstStripeMock(t *testing.T) {
	t.Parallel()
	p, mock := mockPeer(t)
	cat := p.discover()
	catalog, streams := configuredCatalog(t, cat, bestMode)
	offset := mock.log.Len()
	res := p.read(nil, catalog, nil)

	// Every request was accepted.
	exchanges := mock.exchanges(offset)
	if len(exchanges) == 0 {
		t.Fatal("stripe-mock logged no request: the connector did not talk to it")
	}
	var rejected []string
	for _, x := range exchanges {
		if x.Status != 200 {
			rejected = append(rejected, fmt.Sprintf("%d after %q", x.Status, x.Request))
		}
	}
	if len(rejected) > 0 {
		t.Errorf("stripe-mock rejected %d of %d requests: %s", len(rejected), len(exchanges), firstLines(rejected, 10))
	}
	var warnings []string
	for _, m := range res.Of(protocol.TypeLog) {
		msg := strings.ToLower(m.Log.Message)
		if m.Log.Level == protocol.LevelError || m.Log.Level == "FATAL" ||
			(m.Log.Level == protocol.LevelWarn && strings.Contains(msg, "retr")) {
			warnings = append(warnings, m.Log.Level+" "+m.Log.Message)
		}
	}
	if len(warnings) > 0 {
		t.Errorf("the read logged retries or errors:\n%s", strings.Join(warnings, "\n"))
	}
	requireCompleteRead(t, res, streams)
	requireRecordsMatchCatalog(t, res, cat, streams)
	requireStreamStates(t, res, streams)
}
