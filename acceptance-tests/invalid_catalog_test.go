package acceptance

import (
	"slices"
	"testing"

	"source-stripe/internal/fakestripe"
	"source-stripe/protocol"
)

func TestInvalidCatalog(t *testing.T) {
	t.Parallel()
	p, _ := fakePeer(t, fakestripe.DefaultDataset())
	cat := p.discover()
	charges := streamOf(t, cat, "charges")
	type testCase struct {
		name    string
		catalog []byte
	}
	var extra []testCase
	// Every stream is incremental today; the rule is checked as soon as a
	// full-refresh-only stream is added.
	for _, s := range cat.Streams {
		if !slices.Contains(s.SupportedSyncModes, protocol.SyncModeIncremental) {
			extra = append(extra, testCase{"incremental on the full-refresh-only stream " + s.Name, mustJSON(t, map[string]any{"streams": []any{map[string]any{
				"stream": s, "sync_mode": protocol.SyncModeIncremental, "destination_sync_mode": "append",
			}}})})
			break
		}
	}
	for _, tc := range append([]testCase{
		{"unknown stream", mustJSON(t, map[string]any{"streams": []any{map[string]any{
			"stream":    protocol.Stream{Name: "no_such_stream", JSONSchema: charges.JSONSchema, SupportedSyncModes: []string{protocol.SyncModeFullRefresh}},
			"sync_mode": protocol.SyncModeFullRefresh, "destination_sync_mode": "overwrite",
		}}})},
		{"incremental on a cursor the stream does not define", mustJSON(t, map[string]any{"streams": []any{map[string]any{
			"stream":    charges,
			"sync_mode": protocol.SyncModeIncremental, "destination_sync_mode": "append", "cursor_field": []string{"amount"},
		}}})},
		{"a sync mode the connector does not have", mustJSON(t, map[string]any{"streams": []any{map[string]any{
			"stream": charges, "sync_mode": "cdc", "destination_sync_mode": "append",
		}}})},
		{"malformed JSON", []byte(`{"streams": [{"stream": {"name": "charges"}, "sync_mode": `)},
	}, extra...) {
		t.Run(tc.name, func(t *testing.T) {
			res := p.on(t).read(nil, tc.catalog, nil)
			if res.ExitCode == 0 {
				t.Errorf("exit code 0 for an invalid catalog")
			}
			errs := res.Errors()
			if len(errs) != 1 || errs[0].FailureType != protocol.FailureConfig || errs[0].Message == "" {
				t.Errorf("want one TRACE ERROR with failure_type config_error, got: %s", describeErrors(errs))
			}
			if n := len(res.Records("")); n > 0 {
				t.Errorf("%d records despite an invalid catalog", n)
			}
		})
	}
}
