package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"source-stripe/protocol"
)

var stateSeeds = []string{
	``, `null`, `{}`, `[]`,
	`[{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"state_version":1,"created":1700000000}},"sourceStats":{"recordCount":5}}]`,
	`{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges","namespace":"x"},"stream_state":{"created":5}}}`,
	`{"charges":{"created":1700000000},"customers":{"created":1600000000.0},"invoice_line_items":null}`,
	`[{"type":"LEGACY","data":{"charges":{"created":7}}}]`,
	`{"type":"LEGACY","data":{"charges":{"created":7}}}`,
	`[{"type":"GLOBAL","global":{"shared_state":{},"stream_states":[]}}]`,
	`{"charges":{"created":"2024-01-01"}}`,
	`{"charges":{"created":-5}}`,
	`{"charges":{"created":1e15}}`,
	`{"charges":{"created":1.5}}`,
	`{"charges":{"created":137438953472}}`,
	`{"charges":{"state_version":99,"created":1}}`,
	`{"charges":{"state_version":"1","created":1}}`,
	`{"charges":[1,2]}`,
	`[{"type":"STREAM","stream":{"stream_state":{}}}]`,
	`[1]`, `[null]`, `42`, `"charges"`, `true`, `{"type":7}`, `{"type":""}`,
	`[{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":1}}},{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":2}}}]`,
	"\xff", `{"\u0000":{}}`,
}

// FuzzParse: any --state document is either a set of checkpoints that
// round-trip through Marshal, or a config_error with a message.
//
//	go test ./state -run '^$' -fuzz FuzzParse -fuzztime 20s
func FuzzParse(f *testing.F) {
	for _, s := range stateSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, problem := range checkParse(raw) {
			t.Error(problem)
		}
	})
}

func checkParse(raw []byte) (problems []string) {
	set, err := Parse(raw)
	if err != nil {
		var perr *protocol.Error
		if !errors.As(err, &perr) || perr.FailureType != protocol.FailureConfig || perr.Message == "" {
			return []string{fmt.Sprintf("want a config_error with a message, got %T %v", err, err)}
		}
		return nil
	}
	if set == nil {
		return []string{"a nil set without an error"}
	}
	for name, s := range set {
		if s.Version < 1 || s.Version > Version {
			problems = append(problems, fmt.Sprintf("stream %q: state_version %d accepted", name, s.Version))
		}
		if s.Created != nil && (*s.Created < 0 || *s.Created > maxCreated) {
			problems = append(problems, fmt.Sprintf("stream %q: cursor %d accepted", name, *s.Created))
		}
		// What the connector writes, it reads back the same.
		doc, _ := json.Marshal(map[string]json.RawMessage{name: s.Marshal()})
		again, err := Parse(doc)
		if err != nil {
			problems = append(problems, fmt.Sprintf("stream %q: its own state %s does not parse: %v", name, doc, err))
			continue
		}
		a, b := s, again[name]
		a.Version, b.Version = 0, 0 // Marshal writes the current version
		if !reflect.DeepEqual(a, b) {
			problems = append(problems, fmt.Sprintf("stream %q: %+v came back as %+v", name, a, b))
		}
	}
	return problems
}
