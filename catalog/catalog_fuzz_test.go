package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/streams"
)

var catalogSeeds = []struct{ catalog, state string }{
	{`{"streams":[{"stream":{"name":"charges"},"sync_mode":"incremental","destination_sync_mode":"append","cursor_field":["created"]}]}`,
		`[{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":1700000000}}}]`},
	{`{"streams":[{"stream":{"name":"charges","json_schema":{}},"sync_mode":"full_refresh"},{"stream":{"name":"invoice_line_items"},"sync_mode":"full_refresh"}]}`, `{}`},
	{`{"streams":[{"stream":{"name":"bank_accounts"},"sync_mode":"incremental"}]}`, ``},
	{`{"streams":[{"stream":{"name":"charges"},"sync_mode":"incremental","cursor_field":["updated"]}]}`, ``},
	{`{"streams":[{"stream":{"name":"charges"},"sync_mode":"incremental","cursor_field":["created","x"]}]}`, ``},
	{`{"streams":[{"stream":{"name":"charges"},"sync_mode":"bogus"}]}`, ``},
	{`{"streams":[{"stream":{"name":"charges"}}]}`, ``},
	{`{"streams":[{"stream":{"name":"nope"},"sync_mode":"full_refresh"}]}`, `{"nope":{"created":1}}`},
	{`{"streams":[{"stream":{"name":"charges"},"sync_mode":"full_refresh"},{"stream":{"name":"charges"},"sync_mode":"full_refresh"}]}`, ``},
	{`{"streams":[]}`, ``},
	{`{"streams":null}`, ``},
	{`{"streams":[1]}`, ``},
	{`{"streams":[{"stream":{"name":"charges"},"sync_mode":"full_refresh","estuary.dev/range":{"keyBegin":0}}]}`, ``},
	{`{}`, ``}, {`[]`, ``}, {`null`, ``}, {``, ``}, {`{"streams":[{"stream":"charges"}]}`, ``},
}

// FuzzPlan: any configured catalog and state either plan one job per
// configured stream that the connector can honour, or are refused with a
// config_error.
//
//	go test ./catalog -run '^$' -fuzz FuzzPlan -fuzztime 20s
func FuzzPlan(f *testing.F) {
	for _, s := range catalogSeeds {
		f.Add([]byte(s.catalog), []byte(s.state))
	}
	f.Fuzz(func(t *testing.T, rawCatalog, rawState []byte) {
		for _, problem := range checkPlan(rawCatalog, rawState) {
			t.Error(problem)
		}
	})
}

func isConfigError(err error) bool {
	var perr *protocol.Error
	return errors.As(err, &perr) && perr.FailureType == protocol.FailureConfig && perr.Message != ""
}

func checkPlan(rawCatalog, rawState []byte) (problems []string) {
	cc, err := ParseConfigured(rawCatalog)
	if err != nil {
		if !isConfigError(err) {
			return []string{fmt.Sprintf("ParseConfigured: want a config_error, got %T %v", err, err)}
		}
		return nil
	}
	states, err := state.Parse(rawState)
	if err != nil {
		return nil // state.Parse has its own fuzz target
	}
	jobs, err := Plan(cc, states)
	if err != nil {
		if !isConfigError(err) {
			return []string{fmt.Sprintf("Plan: want a config_error, got %T %v", err, err)}
		}
		return nil
	}
	if len(jobs) != len(cc.Streams) {
		return []string{fmt.Sprintf("%d configured streams became %d jobs", len(cc.Streams), len(jobs))}
	}
	seen := map[string]bool{}
	for i, job := range jobs {
		cs := cc.Streams[i]
		name := cs.Stream.Name
		s, ok := streams.Lookup(name)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("planned the unknown stream %q", name))
		case job.Stream.Name != name:
			problems = append(problems, fmt.Sprintf("entry %d asks for %q, the job reads %q", i, name, job.Stream.Name))
		case seen[name]:
			problems = append(problems, fmt.Sprintf("planned %q twice", name))
		case job.Incremental != (cs.SyncMode == protocol.SyncModeIncremental):
			problems = append(problems, fmt.Sprintf("%q: sync_mode %q planned incremental=%v", name, cs.SyncMode, job.Incremental))
		case cs.SyncMode != protocol.SyncModeIncremental && cs.SyncMode != protocol.SyncModeFullRefresh:
			problems = append(problems, fmt.Sprintf("%q: planned the sync_mode %q", name, cs.SyncMode))
		case job.Incremental && !s.Incremental():
			problems = append(problems, fmt.Sprintf("%q: planned incremental, which the stream does not support", name))
		case job.Incremental && !reflect.DeepEqual(job.State, states[name]):
			problems = append(problems, fmt.Sprintf("%q: resumes from %+v, the state says %+v", name, job.State, states[name]))
		}
		seen[name] = true
	}
	return problems
}
