package state

import (
	"strings"
	"testing"

	"source-stripe/protocol"
)

func TestParseForms(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        map[string]int64 // stream -> created; -1 for no cursor
	}{
		{"empty", ``, map[string]int64{}},
		{"null", `null`, map[string]int64{}},
		{"estuary first run", `{}`, map[string]int64{}},
		{"array of stream states", `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"state_version":1,"created":1700000000}},"sourceStats":{"recordCount":5}},
			{"type":"STREAM","stream":{"stream_descriptor":{"name":"invoice_line_items"},"stream_state":{"state_version":1}}}]`,
			map[string]int64{"charges": 1700000000, "invoice_line_items": -1}},
		{"single message", `{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":5}}}`, map[string]int64{"charges": 5}},
		{"legacy object", `{"charges":{"created":1700000000},"customers":{"created":1600000000.0}}`, map[string]int64{"charges": 1700000000, "customers": 1600000000}},
		{"legacy message", `[{"type":"LEGACY","data":{"charges":{"created":7}}}]`, map[string]int64{"charges": 7}},
		{"unversioned state", `{"charges":{"created":9999999999}}`, map[string]int64{"charges": 9999999999}},
		{"null stream state", `{"charges":null}`, map[string]int64{"charges": -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Parse([]byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if len(set) != len(tc.want) {
				t.Fatalf("got %d streams, want %d: %+v", len(set), len(tc.want), set)
			}
			for name, want := range tc.want {
				s, ok := set[name]
				if !ok {
					t.Fatalf("no state for %s", name)
				}
				if want == -1 {
					if s.Created != nil {
						t.Errorf("%s: want no cursor, got %d", name, *s.Created)
					}
				} else if s.Created == nil || *s.Created != want {
					t.Errorf("%s: cursor %v, want %d", name, s.Created, want)
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"not JSON", `{"charges":`, "not valid JSON"},
		{"a number", `42`, "must be a JSON array"},
		{"cursor as string", `{"charges":{"created":"2024-01-01"}}`, `stream "charges" has a 'created' cursor that is not a number`},
		{"negative cursor", `{"charges":{"created":-5}}`, "out of range"},
		{"absurd cursor", `{"charges":{"created":1e15}}`, "out of range"},
		{"fractional cursor", `{"charges":{"created":1.5}}`, "out of range"},
		{"state not an object", `{"charges":[1,2]}`, `the state of stream "charges" must be an object`},
		{"newer version", `{"charges":{"state_version":3,"created":1}}`, "newer than this connector understands"},
		{"events not an object", `{"charges":{"events":5}}`, "malformed 'events' cursor"},
		{"events without since", `{"charges":{"events":{"following":true}}}`, "'events.since' that is missing"},
		{"seen as string", `{"charges":{"events":{"since":5,"seen":{"evt_1":"x"}}}}`, `'events.seen' entry "evt_1"`},
		{"global state", `[{"type":"GLOBAL","global":{}}]`, "GLOBAL are not supported"},
		{"stream without name", `[{"type":"STREAM","stream":{"stream_state":{}}}]`, "no stream.stream_descriptor.name"},
		{"array of garbage", `[1]`, "state entry 0 must be an AirbyteStateMessage object"},
		{"entry with a bad stream state", `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":"x"}}}]`, `state entry 0: the state of stream "charges" has a 'created' cursor`},
		{"another connector's state", `{"charges":{"updated":5}}`, "none of this connector's cursors, only 'updated'"},
		{"a stream twice", `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":1}}},{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":2}}}]`, `the state lists stream "charges" twice (entries 0 and 1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
			if protocol.AsError(err).FailureType != protocol.FailureConfig {
				t.Fatalf("want a config_error, got %v", err)
			}
		})
	}
}

func TestEventsCursor(t *testing.T) {
	set, err := Parse([]byte(`{"charges":{"state_version":2,"created":10,"events":{"since":1700000000,"following":true,"seen":{"evt_1":1699999990}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := set["charges"].Events
	if !set["charges"].Following() || ev.Since != 1700000000 || ev.Seen["evt_1"] != 1699999990 {
		t.Fatalf("got %+v", ev)
	}
	again, err := Parse([]byte(`{"charges":` + string(set["charges"].Marshal()) + `}`))
	if err != nil || again["charges"].Events.Seen["evt_1"] != 1699999990 || *again["charges"].Created != 10 {
		t.Fatalf("round trip: %v %+v", err, again)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	created := int64(1700000000)
	s := Stream{Created: &created}
	if got := string(s.Marshal()); got != `{"state_version":2,"created":1700000000}` {
		t.Fatalf("got %s", got)
	}
	set, err := Parse([]byte(`{"charges":` + string(s.Marshal()) + `}`))
	if err != nil || *set["charges"].Created != 1700000000 {
		t.Fatalf("round trip: %v %+v", err, set)
	}
}
